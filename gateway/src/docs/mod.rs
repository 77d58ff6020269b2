//! The contract for people and generators: the OpenAPI document
//! ([`openapi`]) and the API explorer page over it ([`explorer`]).

pub mod explorer;
pub mod openapi;
