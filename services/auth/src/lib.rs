//! The auth service: logs users in (checking their credentials with the user
//! service), issues short-lived EdDSA access tokens and rotating refresh
//! tokens, keeps sessions, and publishes its public keys; and is the OpenID
//! Connect provider behind the gateway's OAuth endpoints and pages (`oauth`).
//! A library, so the launcher and the tests run the real server in-process.
#![forbid(unsafe_code)]

pub mod config;
pub mod consumer;
/// The rules (the core): what each call does, in domain types.
pub mod core;
pub mod error;
/// The gRPC adapter: requests to the core's input, its answers to responses.
pub mod grpc;
pub mod keys;
pub mod metrics;
/// The OpenID Connect provider: clients, the code flow, tokens, logout.
pub mod oauth;
pub mod pat;
pub mod refresh;
pub mod service_token;
/// The process: assembling the core, the adapter and the server runtime.
pub mod startup;
pub mod store;
pub mod user_client;

pub use config::Config;
pub use error::Error;
pub use error::StartError;
pub use startup::{AuthBinary, serve};
