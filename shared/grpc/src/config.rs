//! Configuration groups every service has (flattened into each service's
//! `clap` config), so the variables mean the same everywhere.

use crate::server::{ConnectionLimits, ServerOptions};
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

    /// Seconds between the HTTP/2 pings the server sends on a connection
    /// with nothing else to read; a peer that does not answer one within
    /// `GRPC_HTTP2_KEEPALIVE_TIMEOUT_SECS` is closed (dead or stalled peers
    /// do not hold connections).
    #[arg(long = "grpc-http2-keepalive-interval-secs", env = "GRPC_HTTP2_KEEPALIVE_INTERVAL_SECS", value_name = "GRPC_HTTP2_KEEPALIVE_INTERVAL_SECS", default_value = "30", value_parser = clap::value_parser!(u64).range(1..=3600).map(Duration::from_secs))]
    pub grpc_http2_keepalive_interval: Duration,

    /// Seconds a peer has to answer a keepalive ping.
    #[arg(long = "grpc-http2-keepalive-timeout-secs", env = "GRPC_HTTP2_KEEPALIVE_TIMEOUT_SECS", value_name = "GRPC_HTTP2_KEEPALIVE_TIMEOUT_SECS", default_value = "10", value_parser = clap::value_parser!(u64).range(1..=600).map(Duration::from_secs))]
    pub grpc_http2_keepalive_timeout: Duration,

    /// Most streams (calls) one connection may have open at once
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    #[arg(long, env = "GRPC_MAX_CONCURRENT_STREAMS", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub grpc_max_concurrent_streams: u32,

    /// Largest header block of a call, in bytes (`SETTINGS_MAX_HEADER_LIST_SIZE`).
    #[arg(long, env = "GRPC_MAX_HEADER_LIST_BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u32).range(1024..))]
    pub grpc_max_header_list_bytes: u32,

    /// Seconds after which a connection is asked to go away (GOAWAY; its
    /// calls finish, the client reconnects, which also spreads clients over
    /// new replicas); 0: no limit.
    #[arg(long = "grpc-max-connection-age-secs", env = "GRPC_MAX_CONNECTION_AGE_SECS", value_name = "GRPC_MAX_CONNECTION_AGE_SECS", default_value = "1800", value_parser = clap::value_parser!(u64).range(0..=86_400).map(Duration::from_secs))]
    pub grpc_max_connection_age: Duration,

    /// Seconds of idleness before TCP keepalive probes (the kernel drops a
    /// peer that vanished without a FIN).
    #[arg(long = "grpc-tcp-keepalive-secs", env = "GRPC_TCP_KEEPALIVE_SECS", value_name = "GRPC_TCP_KEEPALIVE_SECS", default_value = "60", value_parser = clap::value_parser!(u64).range(1..=7200).map(Duration::from_secs))]
    pub grpc_tcp_keepalive: Duration,

    #[command(flatten)]
    pub admin: suite_runtime::admin::AdminArgs,
}

impl GrpcArgs {
    pub fn max_message_bytes(&self) -> usize {
        self.grpc_max_message_bytes as usize
    }

    /// How to serve the gRPC `services` of a server.
    pub fn options(&self, name: &'static str, services: &'static [&'static str]) -> ServerOptions {
        ServerOptions {
            name,
            services,
            timeout: self.grpc_timeout,
            concurrency_limit: self.grpc_concurrency_limit as usize,
            drain_delay: self.shutdown_drain_delay,
            admin_addr: self.admin.admin_addr,
            connection: ConnectionLimits {
                http2_keepalive_interval: self.grpc_http2_keepalive_interval,
                http2_keepalive_timeout: self.grpc_http2_keepalive_timeout,
                max_concurrent_streams: self.grpc_max_concurrent_streams,
                max_header_list_bytes: self.grpc_max_header_list_bytes,
                max_connection_age: (!self.grpc_max_connection_age.is_zero())
                    .then_some(self.grpc_max_connection_age),
                tcp_keepalive: self.grpc_tcp_keepalive,
            },
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

    /// Seconds between HTTP/2 pings on each upstream connection (also idle).
    #[arg(long = "upstream-keepalive-interval-secs", env = "UPSTREAM_KEEPALIVE_INTERVAL_SECS", value_name = "UPSTREAM_KEEPALIVE_INTERVAL_SECS", default_value = "20", value_parser = clap::value_parser!(u64).range(1..=3600).map(Duration::from_secs))]
    pub upstream_keepalive_interval: Duration,

    /// Seconds a ping may go unanswered before its connection is closed.
    #[arg(long = "upstream-keepalive-timeout-secs", env = "UPSTREAM_KEEPALIVE_TIMEOUT_SECS", value_name = "UPSTREAM_KEEPALIVE_TIMEOUT_SECS", default_value = "10", value_parser = clap::value_parser!(u64).range(1..=600).map(Duration::from_secs))]
    pub upstream_keepalive_timeout: Duration,
}

impl UpstreamArgs {
    /// The client keepalive these settings ask for.
    pub fn keepalive(&self) -> crate::balance::Keepalive {
        crate::balance::Keepalive {
            interval: self.upstream_keepalive_interval,
            timeout: self.upstream_keepalive_timeout,
        }
    }
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

/// The configuration with nothing set, not even from the environment: what
/// a test starts from, so that a developer's variables cannot change it.
pub fn defaults_ignoring_env<C: clap::Args + clap::FromArgMatches>() -> Result<C, clap::Error> {
    let matches = C::augment_args(clap::Command::new("suite"))
        .mut_args(|arg| arg.env(clap::builder::Resettable::Reset))
        .try_get_matches_from(["suite"])?;
    C::from_arg_matches(&matches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_flag_parses_to_a_duration_and_out_of_range_is_refused_naming_its_variable() {
        let args: GrpcArgs = parse_from(["suite", "--grpc-timeout-secs", "7"]).expect("parses");
        assert_eq!(args.grpc_timeout, Duration::from_secs(7));
        assert_eq!(args.options("test", &[]).timeout, Duration::from_secs(7));

        let err = parse_from::<GrpcArgs, _, _>(["suite", "--grpc-timeout-secs", "0"])
            .expect_err("refused")
            .to_string();
        assert!(err.contains("GRPC_TIMEOUT_SECS"), "{err}");
    }

    #[test]
    fn the_defaults_ignoring_the_environment_read_no_variable() {
        // PATH is set wherever tests run; a setting bound to it shows
        // whether the environment was read.
        #[derive(clap::Parser)]
        struct Probe {
            #[arg(long, env = "PATH", default_value = "unset")]
            path: String,
        }
        assert_ne!(
            parse_from::<Probe, _, _>(["suite"]).expect("parses").path,
            "unset"
        );
        let hermetic: Probe = defaults_ignoring_env().expect("parses");
        assert_eq!(hermetic.path, "unset");
    }
}
