//! The HTTP side of the gateway, outside in: the server loop ([`listen`]),
//! the layers every answer passes ([`observe`], [`head`], [`headers`],
//! [`request_id`], [`body`]), and the one error format ([`problem`]).

pub mod body;
pub mod head;
pub mod headers;
pub mod listen;
pub mod observe;
pub mod problem;
pub mod request_id;
