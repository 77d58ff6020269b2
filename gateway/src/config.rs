//! The gateway's configuration: environment variables (or flags).

use std::{net::SocketAddr, time::Duration};

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen_addr: SocketAddr,

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

    /// Each request's time budget in milliseconds, sent on as `grpc-timeout` (504 when spent).
    #[arg(long, env = "REQUEST_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub request_timeout_ms: u64,

    /// Milliseconds to wait for a connection to a service (503 after that).
    #[arg(long, env = "UPSTREAM_CONNECT_TIMEOUT_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub upstream_connect_timeout_ms: u64,

    /// Largest request body in bytes (413 above).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_body_bytes: u32,
}

impl Config {
    /// The defaults, as `cargo run` with nothing set would have them.
    pub fn defaults() -> Self {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        <Wrapper as clap::Parser>::parse_from(["suite-gateway"]).config
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
}
