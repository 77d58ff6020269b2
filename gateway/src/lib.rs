//! The gateway: a public REST/JSON API whose routes come from the protos'
//! `google.api.http` options, transcoded into gRPC calls to the services.
//! A library, so the launcher and the tests run the real server in-process.
#![forbid(unsafe_code)]

pub mod app;
pub mod config;
pub mod headers;
pub mod limits;
pub mod observe;
pub mod openapi;
pub mod problem;
pub mod retry;
pub mod routes;
pub mod template;
pub mod transcode;

pub use config::Config;

use axum::{Router, routing::get};
use std::{collections::HashMap, net::SocketAddr, sync::Arc, time::Duration};
use suite_grpc::balance;
use suite_telemetry::grpc_client::TraceClientLayer;
use tokio::net::TcpListener;

/// The services the gateway routes to.
pub const USER_SERVICE: &str = "suite.user.v1.UserService";
pub const AUTH_SERVICE: &str = "suite.auth.v1.AuthService";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the contract's descriptors: {0}")]
    Descriptors(String),
    #[error(transparent)]
    Routes(#[from] routes::RouteError),
    #[error("invalid {0}: {1}")]
    Upstream(&'static str, String),
    #[error("invalid JWKS: {0}")]
    Jwks(String),
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
}

/// A lazy channel balanced over every replica `url` resolves to.
fn channel(
    variable: &'static str,
    url: &str,
    settings: balance::Settings,
    resolver: &Arc<dyn balance::Resolve>,
) -> Result<balance::Balanced, Error> {
    balance::channel_with(url, settings, resolver.clone())
        .map_err(|e| Error::Upstream(variable, e.to_string()))
}

/// The HTTP application (routes and state), without a listener.
pub fn app(config: &Config) -> Result<Router, Error> {
    app_with_resolver(config, Arc::new(balance::Dns))
}

/// [`app`] with service names resolved by `resolver` instead of DNS (tests).
pub fn app_with_resolver(
    config: &Config,
    resolver: Arc<dyn balance::Resolve>,
) -> Result<Router, Error> {
    let pool = prost_reflect::DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| Error::Descriptors(e.to_string()))?;
    let routes = routes::RouteTable::from_pool(&pool, &[USER_SERVICE, AUTH_SERVICE])?;
    // Rendered once: the document is a pure function of the contract.
    let openapi = bytes::Bytes::from(openapi::document(&routes, &pool).to_string());
    let settings = balance::Settings {
        connect_timeout: Duration::from_millis(config.upstream_connect_timeout_ms),
        // Each request sets its own deadline (the budget).
        timeout: None,
        resolve_interval: config.upstream.resolve_interval(),
    };
    let upstreams = HashMap::from([
        (
            USER_SERVICE.to_owned(),
            channel(
                "USER_SERVICE_URL",
                &config.user_service_url,
                settings,
                &resolver,
            )?,
        ),
        (
            AUTH_SERVICE.to_owned(),
            channel(
                "AUTH_SERVICE_URL",
                &config.auth_service_url,
                settings,
                &resolver,
            )?,
        ),
    ]);
    // Tokens are verified here, locally, with the auth service's public keys
    // (fetched on first need and when an unknown key id shows up).
    let source = suite_tokens::jwks::JwksSource::from_config(&config.jwks_source())
        .map_err(|e| Error::Jwks(e.to_string()))?;
    let keys = suite_tokens::jwks::KeyCache::new(
        Some(source),
        Duration::from_secs(config.jwks_refresh_min_secs),
    );
    let auth = suite_tokens::Verifier::new(
        keys,
        suite_tokens::TokenRules {
            issuer: config.jwt_issuer.clone(),
            audiences: vec![config.access_token_audience.clone()],
            leeway_secs: config.jwt_leeway_secs,
        },
    );
    let trusted_proxies = config
        .trusted_proxies
        .iter()
        .map(|p| {
            p.trim().parse().map_err(|_| {
                Error::Upstream("TRUSTED_PROXIES", format!("{p:?} is not an IP address"))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let limits = limits::Limits::new(&limits::LimitSettings {
        per_second: config.rate_limit_per_second,
        burst: config.rate_limit_burst,
        sensitive_per_minute: config.auth_rate_limit_per_minute,
        sensitive_burst: config.auth_rate_limit_burst,
        trusted_proxies,
    });
    // Client spans and trace propagation on every call to a service.
    let traces = HashMap::from([
        (
            USER_SERVICE.to_owned(),
            TraceClientLayer::new(&config.user_service_url),
        ),
        (
            AUTH_SERVICE.to_owned(),
            TraceClientLayer::new(&config.auth_service_url),
        ),
    ]);
    let gateway = Arc::new(app::Gateway {
        routes,
        upstreams,
        traces,
        auth,
        limits,
        budget: config.request_timeout(),
        max_body_bytes: config.max_body_bytes as usize,
    });
    let router = Router::new()
        // Liveness: the process answers.
        .route(
            "/api/health",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route(
            "/api/openapi.json",
            get(move || {
                let body = openapi.clone();
                async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
            }),
        )
        // Prometheus metrics of this process.
        .route("/metrics", get(suite_telemetry::metrics::metrics_response))
        // Readiness: every upstream's gRPC health says SERVING.
        .route("/readyz", get(app::ready))
        .fallback(app::transcode)
        .with_state(gateway.clone());
    // Outermost: the server span and metrics cover everything, 429s included.
    Ok(
        headers::secure(router, config)?.layer(axum::middleware::from_fn_with_state(
            gateway,
            observe::observe,
        )),
    )
}

/// Serves the gateway on `listener` until `shutdown` completes, then lets
/// in-flight requests finish.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let router = app(&config)?;
    tracing::info!(addr = ?listener.local_addr().ok(), "gateway listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    tracing::info!("gateway stopped");
    Ok(())
}

/// The `suite-gateway` binary.
#[derive(Debug)]
pub struct Gateway;

impl suite_grpc::runner::Service for Gateway {
    type Config = Config;
    type Error = Error;
    const NAME: &'static str = "suite-gateway";
    const ABOUT: &'static str = "The suite's REST/JSON gateway";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const PROBE: suite_grpc::runner::Probe = suite_grpc::runner::Probe::Http("/readyz");
    const MIGRATES: bool = false;

    fn listen_addr(config: &Config) -> SocketAddr {
        config.listen_addr
    }

    fn serve(
        config: Config,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Error>> {
        serve(config, listener, shutdown)
    }

    async fn migrate(_: Config) -> Result<(), Error> {
        Ok(())
    }
}
