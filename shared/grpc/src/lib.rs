//! The gRPC layer of the services and their clients, and nothing around the
//! process (that is `suite-runtime`):
//! - serving: a tonic server with health, reflection, limits and a drain
//!   ([`server`], [`health`], [`reflection`]) and its settings ([`config`]:
//!   `GrpcArgs`, `UpstreamArgs`, and the config parsing every binary shares);
//! - calling: channels balanced over every replica ([`balance`]), retries of
//!   read-only calls ([`retry`]), deadlines carried on ([`deadline`]);
//! - the API's conventions: statuses every service answers alike
//!   ([`status`]), AIP `List` paging ([`paging`]: page tokens are part of
//!   the gRPC contract, so they live with it), and whose word to take for
//!   the client's address ([`forwarded`]).
#![forbid(unsafe_code)]

pub mod balance;
pub mod config;
pub mod deadline;
pub mod forwarded;
pub mod health;
pub mod paging;
pub mod reflection;
pub mod retry;
pub mod server;
pub mod status;
