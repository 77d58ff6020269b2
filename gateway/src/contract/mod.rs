//! The REST contract, read from the protos: the routes and their path
//! templates, resolved at start-up into the endpoints that serve them, and
//! the proto3 JSON transcoding of a route's requests and answers.

pub mod endpoints;
pub mod names;
pub mod percent;
pub mod routes;
pub mod template;
pub mod transcode;
