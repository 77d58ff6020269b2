//! Configuration groups every service has (flattened into each service's
//! `clap` config), so the variables mean the same everywhere.

use crate::{db::PoolSettings, server::ServerOptions};
use std::time::Duration;

/// A configuration value that cannot work, named by its variable.
#[derive(Debug, thiserror::Error)]
#[error("invalid {variable}: {reason}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(variable: &'static str, reason: impl Into<String>) -> Self {
        Self {
            variable,
            reason: reason.into(),
        }
    }
}

/// The database connection pool.
#[derive(Debug, Clone, clap::Args)]
pub struct PoolArgs {
    /// Most database connections the service holds.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: u32,

    /// Seconds a call waits for a database connection before it is Unavailable.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_SECS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub database_acquire_timeout_secs: u64,
}

impl PoolArgs {
    pub fn settings(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.database_max_connections,
            acquire_timeout: Duration::from_secs(self.database_acquire_timeout_secs),
        }
    }
}

/// Limits of the gRPC server.
#[derive(Debug, Clone, clap::Args)]
pub struct GrpcArgs {
    /// Largest gRPC request message, in bytes.
    #[arg(long, env = "GRPC_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1024..))]
    pub grpc_max_message_bytes: u32,

    /// Most calls served at once; more wait.
    #[arg(long, env = "GRPC_CONCURRENCY_LIMIT", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub grpc_concurrency_limit: u32,

    /// Upper bound on any call's duration, in seconds (a shorter `grpc-timeout` wins).
    #[arg(long, env = "GRPC_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub grpc_timeout_secs: u64,

    /// Seconds the server keeps serving after the stop signal, NOT_SERVING,
    /// while clients and endpoints drop it; then it drains in-flight calls.
    #[arg(long, env = "SHUTDOWN_DRAIN_DELAY_SECS", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub shutdown_drain_delay_secs: u64,
}

impl GrpcArgs {
    pub fn max_message_bytes(&self) -> usize {
        self.grpc_max_message_bytes as usize
    }

    /// How to serve the gRPC `services` of a server.
    pub fn options(&self, services: &'static [&'static str]) -> ServerOptions {
        ServerOptions {
            services,
            timeout: Duration::from_secs(self.grpc_timeout_secs),
            concurrency_limit: self.grpc_concurrency_limit as usize,
            drain_delay: Duration::from_secs(self.shutdown_drain_delay_secs),
        }
    }
}

/// How a client finds the replicas of the services it calls.
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamArgs {
    /// Seconds between re-resolutions of each service's name (every address
    /// it resolves to gets calls; see `balance`).
    #[arg(long, env = "UPSTREAM_RESOLVE_INTERVAL_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub upstream_resolve_interval_secs: u64,
}

impl UpstreamArgs {
    pub fn resolve_interval(&self) -> Duration {
        Duration::from_secs(self.upstream_resolve_interval_secs)
    }
}

/// Checks a database URL's scheme.
pub fn check_database_url(url: &str) -> Result<(), ConfigError> {
    if ["postgres://", "postgresql://", "sqlite:"]
        .iter()
        .any(|p| url.starts_with(p))
    {
        Ok(())
    } else {
        Err(ConfigError::new(
            "DATABASE_URL",
            "must start with postgres://, postgresql:// or sqlite:",
        ))
    }
}

/// The operators' HTTP port of a gRPC service.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Address of the admin HTTP server (`GET /metrics`, Prometheus text;
    /// `GET /livez`, liveness). Unset: no admin server.
    #[arg(long, env = "ADMIN_ADDR")]
    pub admin_addr: Option<std::net::SocketAddr>,
}
