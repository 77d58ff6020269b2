//! The gateway's configuration: environment variables (or flags).

use clap::builder::TypedValueParser as _;
use http::HeaderValue;
use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};
use suite_grpc::config::UpstreamArgs;
use suite_runtime::admin::AdminArgs;
use suite_tokens::{
    config::{JwksArgs, TokenArgs},
    jwks::{JwksError, JwksSource},
};

#[derive(Debug, Clone, clap::Args)]
// Unset, the gateway does not go without keys (as a service would): it asks
// the auth service.
#[command(mut_arg("jwks", |a| a.help(
    "Trusted public keys: a JWKS file path or `http://` URL, `grpc://host:port` (GetJwks) \
     or an inline JWKS JSON document; default: the GetJwks of AUTH_SERVICE_URL",
)))]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

    // ADMIN_ADDR: `/metrics`, `/livez` and `/readyz`, off the public port.
    #[command(flatten)]
    pub admin: AdminArgs,

    /// The user service's gRPC address.
    #[arg(
        long,
        env = "USER_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub user_service_url: String,

    /// The auth service's gRPC address.
    #[arg(
        long,
        env = "AUTH_SERVICE_URL",
        default_value = "http://127.0.0.1:50052"
    )]
    pub auth_service_url: String,

    // JWT_ISSUER, JWT_LEEWAY_SECS: the same as the services'.
    #[command(flatten)]
    pub tokens: TokenArgs,

    // JWKS (unset here: the auth service's GetJwks), JWKS_REFRESH_MIN_SECS.
    #[command(flatten)]
    pub keys: JwksArgs,

    /// Where the revocations come from (NATS JetStream, or in-process).
    #[command(flatten)]
    pub events: suite_events::EventsArgs,

    /// Where the rate buckets are shared by the replicas (unset: each
    /// replica its own).
    #[command(flatten)]
    pub redis: suite_redis::RedisArgs,

    /// The `aud` every access token must carry.
    #[arg(long, env = "ACCESS_TOKEN_AUDIENCE", default_value = "suite")]
    pub access_token_audience: String,

    /// Each request's time budget in milliseconds, sent on as `grpc-timeout` (504 when spent).
    #[arg(long = "request-timeout-ms", env = "REQUEST_TIMEOUT_MS", value_name = "REQUEST_TIMEOUT_MS", default_value = "10000", value_parser = clap::value_parser!(u64).range(10..=600_000).map(Duration::from_millis))]
    pub request_timeout: Duration,

    /// Milliseconds to wait for a connection to a service (503 after that).
    #[arg(long = "upstream-connect-timeout-ms", env = "UPSTREAM_CONNECT_TIMEOUT_MS", value_name = "UPSTREAM_CONNECT_TIMEOUT_MS", default_value = "1000", value_parser = clap::value_parser!(u64).range(10..=60_000).map(Duration::from_millis))]
    pub upstream_connect_timeout: Duration,

    #[command(flatten)]
    pub upstream: UpstreamArgs,

    /// `Strict-Transport-Security` max-age in seconds; 0 leaves it out (plain
    /// HTTP, local use). Set it where TLS terminates in front of the gateway.
    #[arg(long, env = "HSTS_MAX_AGE_SECS", default_value_t = 0)]
    pub hsts_max_age_secs: u64,

    /// Origins allowed to call from a browser (CORS), comma-separated; none by default.
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = origin)]
    pub cors_allowed_origins: Vec<HeaderValue>,

    /// Requests per second each client may make (token bucket refill).
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_per_second: u32,

    /// Requests a client may make at once (token bucket size).
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,

    /// Register/login/refresh/logout calls per minute each client may make.
    #[arg(long, env = "AUTH_RATE_LIMIT_PER_MINUTE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_rate_limit_per_minute: u32,

    /// Register/login/refresh/logout calls a client may make at once.
    #[arg(long, env = "AUTH_RATE_LIMIT_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_rate_limit_burst: u32,

    /// Shared with the services: with it they believe the client address the
    /// gateway tells them (`x-forwarded-for`), which their password throttle
    /// counts by. Unset: they see only the gateway's own address.
    #[arg(long, env = "FORWARDING_SECRET", hide_env_values = true)]
    pub forwarding_secret: Option<secrecy::SecretString>,

    /// Proxies (IP addresses, comma-separated) whose X-Forwarded-For is believed.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = ip_address)]
    pub trusted_proxies: Vec<IpAddr>,

    /// Largest request body in bytes (413 above).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_body_bytes: u32,

    /// Milliseconds a client has to send a request's head (line and headers);
    /// a slower one is closed. The body must then arrive within
    /// `REQUEST_TIMEOUT_MS` (408 after).
    #[arg(long = "header-read-timeout-ms", env = "HEADER_READ_TIMEOUT_MS", value_name = "HEADER_READ_TIMEOUT_MS", default_value = "5000", value_parser = clap::value_parser!(u64).range(100..=60_000).map(Duration::from_millis))]
    pub header_read_timeout: Duration,

    /// Most client connections open at once; more wait to be accepted.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Seconds the gateway goes on accepting connections after the stop
    /// signal, `/readyz` answering 503, for load balancers that act on
    /// readiness (Kubernetes' preStop sleep does this job before the signal).
    #[arg(long = "shutdown-drain-delay-secs", env = "SHUTDOWN_DRAIN_DELAY_SECS", value_name = "SHUTDOWN_DRAIN_DELAY_SECS", default_value = "0", value_parser = clap::value_parser!(u64).range(0..=600).map(Duration::from_secs))]
    pub shutdown_drain_delay: Duration,

    /// Milliseconds an idle HTTP/1.1 connection stays open once the gateway
    /// stops accepting, so that a request its client is already sending gets
    /// an answer (with `Connection: close`) instead of a reset.
    #[arg(long = "shutdown-idle-grace-ms", env = "SHUTDOWN_IDLE_GRACE_MS", value_name = "SHUTDOWN_IDLE_GRACE_MS", default_value = "1000", value_parser = clap::value_parser!(u64).range(0..=60_000).map(Duration::from_millis))]
    pub shutdown_idle_grace: Duration,

    /// Most Server-Sent Event streams open at once (503 above): each holds a
    /// connection and an upstream call for as long as its token lives.
    #[arg(long, env = "MAX_EVENT_STREAMS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_event_streams: u32,

    /// Event streams one user may hold open at once (429 above), so that
    /// one user cannot take `MAX_EVENT_STREAMS` from everyone else.
    #[arg(long, env = "MAX_EVENT_STREAMS_PER_USER", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_event_streams_per_user: u32,

    /// Event streams one client address may hold open at once (429 above),
    /// whoever's tokens it holds.
    #[arg(long, env = "MAX_EVENT_STREAMS_PER_ADDRESS", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_event_streams_per_address: u32,

    /// Event streams carried by one upstream connection. Streams have
    /// connections of their own, opened as needed, never the one the other
    /// calls take; keep this under the services' `GRPC_MAX_CONCURRENT_STREAMS`.
    #[arg(long, env = "EVENT_STREAMS_PER_CONNECTION", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub event_streams_per_connection: u32,

    /// The sign-in pages' look (BRANDING_*) and sign-up link.
    #[command(flatten)]
    pub branding: crate::oidc::branding::BrandingArgs,

    /// Milliseconds of silence on an event stream before a `: keep-alive`
    /// comment, so that proxies and clients do not take it for dead.
    #[arg(long = "event-stream-keep-alive-ms", env = "EVENT_STREAM_KEEP_ALIVE_MS", value_name = "EVENT_STREAM_KEEP_ALIVE_MS", default_value = "15000", value_parser = clap::value_parser!(u64).range(10..=300_000).map(Duration::from_millis))]
    pub event_stream_keep_alive: Duration,
}

impl Config {
    /// The defaults, as `cargo run` with nothing set would have them.
    pub fn defaults() -> Self {
        suite_grpc::config::defaults()
    }

    /// The JWKS source: `JWKS`, or the auth service's GetJwks.
    pub fn jwks_source(&self) -> Result<JwksSource, JwksError> {
        if let Some(source) = &self.keys.jwks {
            return Ok(source.clone());
        }
        let authority = self
            .auth_service_url
            .split_once("://")
            .map_or(self.auth_service_url.as_str(), |(_, rest)| rest);
        JwksSource::from_config(&format!("grpc://{}", authority.trim_end_matches('/')))
    }
}

/// One `TRUSTED_PROXIES` entry (spaces around it allowed).
fn ip_address(value: &str) -> Result<IpAddr, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not an IP address"))
}

/// One `CORS_ALLOWED_ORIGINS` entry (spaces around it allowed); an empty
/// entry (`a,,b`) stays empty and allows nothing.
fn origin(value: &str) -> Result<HeaderValue, String> {
    HeaderValue::from_str(value.trim()).map_err(|_| format!("{value:?} is not a header value"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn lists_are_parsed_at_start_up_and_a_bad_entry_names_its_variable() {
        let cli = Cli::try_parse_from([
            "gw",
            "--trusted-proxies",
            "10.0.0.1, ::1",
            "--cors-allowed-origins",
            "https://a.example, https://b.example",
        ])
        .expect("parsed");
        assert_eq!(
            cli.config.trusted_proxies,
            vec![
                IpAddr::from([10, 0, 0, 1]),
                IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])
            ]
        );
        assert_eq!(cli.config.cors_allowed_origins[1], "https://b.example");
        let err = Cli::try_parse_from(["gw", "--trusted-proxies", "10.0.0.1,proxy"])
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("trusted-proxies") && err.contains("proxy"),
            "{err}"
        );
    }
}
