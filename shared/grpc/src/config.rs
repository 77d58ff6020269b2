//! Configuration groups every service has (flattened into each service's
//! `clap` config), so the variables mean the same everywhere.

use crate::server::ServerOptions;
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

    #[command(flatten)]
    pub admin: AdminArgs,
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
            admin_addr: self.admin.admin_addr,
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

/// The operators' HTTP port of a gRPC service.
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Address of the admin HTTP server (`GET /metrics`, Prometheus text;
    /// `GET /livez`, liveness). Unset: no admin server.
    #[arg(long, env = "ADMIN_ADDR")]
    pub admin_addr: Option<std::net::SocketAddr>,
}

/// A binary's configuration from command-line arguments (the first names
/// the program) and the environment, exactly as the binary parses it.
pub fn parse_from<C, I, T>(args: I) -> Result<C, clap::Error>
where
    C: clap::Args + clap::FromArgMatches,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = C::augment_args(clap::Command::new("suite")).try_get_matches_from(args)?;
    C::from_arg_matches(&matches)
}

/// The configuration with nothing but the environment set, as `cargo run`
/// has it; an environment variable that cannot work ends the process with
/// clap's message naming it.
pub fn defaults<C: clap::Args + clap::FromArgMatches>() -> C {
    parse_from(["suite"]).unwrap_or_else(|e| e.exit())
}
