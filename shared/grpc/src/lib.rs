//! The gRPC runtime shared by the services and their clients: serving with
//! health, reflection, limits and a drain ([`server`]); deadlines carried on
//! ([`deadline`]); channels balanced over every replica ([`balance`]) and
//! retries of read-only calls ([`retry`]); probes and the stop signal.
#![forbid(unsafe_code)]

pub mod balance;
pub mod config;
pub mod deadline;
pub mod forwarded;
pub mod health;
pub mod paging;
pub mod probe;
pub mod reflection;
pub mod retry;
pub mod runner;
pub mod server;
pub mod shutdown;
pub mod status;
