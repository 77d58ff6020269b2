//! Plumbing shared by the suite's binaries: access-token signing and
//! verification, gRPC server set-up, shutdown and logging.
#![forbid(unsafe_code)]

pub mod auth;
pub mod balance;
pub mod codec;
pub mod config;
pub mod db;
pub mod deadline;
pub mod grpc;
pub mod grpc_status;
pub mod jwks;
pub mod jwt;
pub mod log_format;
pub mod metrics;
pub mod otlp;
pub mod probe;
pub mod rpc_server;
pub mod server;
pub mod shutdown;
pub mod spans;
pub mod telemetry;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod trace_client;
pub mod trace_context;
