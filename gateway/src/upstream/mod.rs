//! The calls to the services: the handler that forwards a route's request
//! ([`forward`]), its RPC ([`call`]), event streams ([`sse`]) on connections
//! of their own ([`lanes`]), and readiness ([`ready`]).

pub mod call;
pub mod forward;
pub mod lanes;
pub mod ready;
pub mod sse;
