//! Configuration groups every service has (flattened into each service's
//! `clap` config), so the variables mean the same everywhere.

use crate::server::ServerOptions;
use clap::builder::TypedValueParser as _;
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
    #[arg(long = "grpc-timeout-secs", env = "GRPC_TIMEOUT_SECS", value_name = "GRPC_TIMEOUT_SECS", default_value = "30", value_parser = clap::value_parser!(u64).range(1..=3600).map(Duration::from_secs))]
    pub grpc_timeout: Duration,

    /// Seconds the server keeps serving after the stop signal, NOT_SERVING,
    /// while clients and endpoints drop it; then it drains in-flight calls.
    #[arg(long = "shutdown-drain-delay-secs", env = "SHUTDOWN_DRAIN_DELAY_SECS", value_name = "SHUTDOWN_DRAIN_DELAY_SECS", default_value = "0", value_parser = clap::value_parser!(u64).range(0..=600).map(Duration::from_secs))]
    pub shutdown_drain_delay: Duration,

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
            timeout: self.grpc_timeout,
            concurrency_limit: self.grpc_concurrency_limit as usize,
            drain_delay: self.shutdown_drain_delay,
            admin_addr: self.admin.admin_addr,
        }
    }
}

/// How a client finds the replicas of the services it calls.
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamArgs {
    /// Seconds between re-resolutions of each service's name (every address
    /// it resolves to gets calls; see `balance`).
    #[arg(long = "upstream-resolve-interval-secs", env = "UPSTREAM_RESOLVE_INTERVAL_SECS", value_name = "UPSTREAM_RESOLVE_INTERVAL_SECS", default_value = "10", value_parser = clap::value_parser!(u64).range(1..=3600).map(Duration::from_secs))]
    pub upstream_resolve_interval: Duration,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_flag_parses_to_a_duration_and_out_of_range_is_refused_naming_its_variable() {
        let args: GrpcArgs = parse_from(["suite", "--grpc-timeout-secs", "7"]).expect("parses");
        assert_eq!(args.grpc_timeout, Duration::from_secs(7));
        assert_eq!(args.options(&[]).timeout, Duration::from_secs(7));

        let err = parse_from::<GrpcArgs, _, _>(["suite", "--grpc-timeout-secs", "0"])
            .expect_err("refused")
            .to_string();
        assert!(err.contains("GRPC_TIMEOUT_SECS"), "{err}");
    }
}
