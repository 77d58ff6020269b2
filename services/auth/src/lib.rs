//! The auth service: logs users in (checking their credentials with the user
//! service), issues short-lived EdDSA access tokens and rotating refresh
//! tokens, keeps sessions, and publishes its public keys. A library, so the
//! launcher and the tests run the real server in-process.
#![forbid(unsafe_code)]

pub mod config;
pub mod consumer;
pub mod error;
pub mod grpc;
pub mod keys;
pub mod metrics;
pub mod refresh;
pub mod server;
pub mod service;
pub mod service_token;
pub mod store;
pub mod user_client;

pub use config::Config;
pub use error::Error;
pub use error::StartError;
pub use server::{AuthService, serve};
