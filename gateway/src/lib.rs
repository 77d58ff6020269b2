//! The gateway: a public REST/JSON API whose routes come from the protos'
//! `google.api.http` options, transcoded into gRPC calls to the services.
//! A library, so the launcher and the tests run the real server in-process.
//!
//! A request goes down the layer stack of [`Builder::build`] (outermost
//! first): [`http::observe`] → [`http::head`] → [`http::headers`] → the
//! router (the gateway's own routes, [`docs`]) → [`http::request_id`] →
//! [`policy::rate_limit`] → [`policy::authenticate`] → [`http::body`] →
//! [`upstream::forward`], which transcodes it ([`contract`]) and calls the
//! service ([`upstream::call`]). Beside the contract's routes, [`oidc`]
//! serves the OpenID Connect endpoints and the sign-in pages over the auth
//! service's OAuthService.
#![forbid(unsafe_code)]

pub mod config;
pub mod contract;
pub mod docs;
pub mod http;
pub mod oidc;
pub mod policy;
pub mod state;
pub mod upstream;

pub use config::Config;

use crate::{
    contract::{endpoints, routes},
    docs::{explorer, openapi},
    http::{body, head, headers, listen, observe, request_id},
    policy::{authenticate, rate_limit},
    upstream::{forward, lanes, ready, sse},
};
use axum::{
    Router,
    middleware::{from_fn, from_fn_with_state},
    routing::get,
};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use suite_grpc::balance;
use suite_telemetry::grpc_client::TraceClientLayer;
use tokio::net::TcpListener;

/// The services the gateway routes to.
pub const USER_SERVICE: &str = "suite.user.v1.UserService";
pub const AUTH_SERVICE: &str = "suite.auth.v1.AuthService";
/// The OAuth clients and the users' consents: REST routes, served by the auth service.
pub const CLIENT_SERVICE: &str = "suite.auth.v1.ClientService";
pub const CONSENT_SERVICE: &str = "suite.auth.v1.ConsentService";
/// Personal access tokens: REST routes, served by the auth service.
pub const TOKEN_SERVICE: &str = "suite.auth.v1.TokenService";
/// Every service whose `google.api.http` rules become routes. OAuthService
/// is not among them: it has no rules, and the OAuth endpoints call it.
pub const ROUTED_SERVICES: [&str; 5] = [
    USER_SERVICE,
    AUTH_SERVICE,
    CLIENT_SERVICE,
    CONSENT_SERVICE,
    TOKEN_SERVICE,
];

/// The gateway's own routes beside the contract's (named once for the
/// router, the span names and the OpenAPI document).
pub const HEALTH_PATH: &str = "/api/health";
pub const OPENAPI_PATH: &str = "/api/openapi.json";

/// Why the gateway cannot start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the contract's descriptors: {0}")]
    Descriptors(String),
    #[error(transparent)]
    Routes(#[from] routes::RouteError),
    #[error(transparent)]
    Endpoints(#[from] endpoints::EndpointError),
    #[error("invalid {0}: {1}")]
    Upstream(&'static str, String),
    #[error("invalid JWKS: {0}")]
    Jwks(String),
    #[error("invalid HSTS_MAX_AGE_SECS: {0}")]
    Hsts(String),
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
    #[error("ADMIN_ADDR: {0}")]
    Admin(std::io::Error),
    #[error("events: {0}")]
    Events(String),
    #[error("{0}")]
    Redis(String),
    #[error(transparent)]
    Oidc(#[from] oidc::OidcError),
}

/// A service, its lazy channel balanced over every replica its URL resolves
/// to, the channels of its event streams, and its client trace layer.
fn upstream(
    service: &'static str,
    variable: &'static str,
    url: &str,
    settings: balance::Settings,
    resolver: &Arc<dyn balance::Resolve>,
    streams_per_connection: usize,
) -> Result<endpoints::Upstream, Error> {
    let open = {
        let (url, resolver) = (url.to_owned(), resolver.clone());
        move || balance::channel_with(&url, settings, resolver.clone())
    };
    Ok(endpoints::Upstream {
        service,
        channel: open().map_err(|e| Error::Upstream(variable, e.to_string()))?,
        streams: Arc::new(lanes::Lanes::new(Box::new(open), streams_per_connection)),
        trace: TraceClientLayer::new(url),
    })
}

/// The gateway's two HTTP applications, sharing one state (the upstreams'
/// channels): what clients reach, and what operators reach.
pub struct Apps {
    /// The public port: the API, `/api/health` (liveness), `/api/openapi.json`,
    /// `/api/docs` (its explorer).
    pub public: Router,
    /// The admin port (`ADMIN_ADDR`): `/metrics`, `/livez` and `/readyz`,
    /// which are no business of clients (and `/readyz` costs health calls).
    pub admin: Router,
    /// Send `true` when the server stops: `/readyz` answers 503 and the
    /// event streams end.
    pub closing: tokio::sync::watch::Sender<bool>,
}

/// Builds the gateway's applications from its configuration: service names
/// resolved by DNS and revocations that nothing feeds unless told otherwise.
pub struct Builder<'a> {
    config: &'a Config,
    resolver: Arc<dyn balance::Resolve>,
    revocations: Option<suite_tokens::Revocations>,
}

impl<'a> Builder<'a> {
    pub fn new(config: &'a Config) -> Self {
        Self {
            config,
            resolver: Arc::new(balance::Dns),
            revocations: None,
        }
    }

    /// Service names resolved by `resolver` instead of DNS (tests).
    pub fn resolver(mut self, resolver: Arc<dyn balance::Resolve>) -> Self {
        self.resolver = resolver;
        self
    }

    /// Refuses also the tokens `revocations` holds (and is not ready until
    /// it has caught up with the events). Without it nothing feeds the
    /// revocations: tokens live until `exp`.
    pub fn revocations(mut self, revocations: suite_tokens::Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    /// The public and the admin applications.
    pub fn build(self) -> Result<Apps, Error> {
        let config = self.config;
        let revocations = self
            .revocations
            .unwrap_or_else(|| suite_tokens::Revocations::complete(config.tokens.access_token_ttl));
        apps(config, &self.resolver, revocations)
    }
}

/// The applications, refusing also the tokens `revocations` holds.
fn apps(
    config: &Config,
    resolver: &Arc<dyn balance::Resolve>,
    revocations: suite_tokens::Revocations,
) -> Result<Apps, Error> {
    let pool = prost_reflect::DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET)
        .map_err(|e| Error::Descriptors(e.to_string()))?;
    let routes = routes::RouteTable::from_pool(&pool, &ROUTED_SERVICES)?;
    // Rendered once: the document is a pure function of the contract.
    let openapi = bytes::Bytes::from(openapi::document(&routes, &pool).to_string());
    let settings = balance::Settings {
        connect_timeout: config.upstream_connect_timeout,
        // Each request sets its own deadline (the budget).
        timeout: None,
        resolve_interval: config.upstream.upstream_resolve_interval,
        keepalive: config.upstream.keepalive(),
    };
    let [user, auth] = [
        upstream(
            USER_SERVICE,
            "USER_SERVICE_URL",
            &config.user_service_url,
            settings,
            resolver,
            config.event_streams_per_connection as usize,
        )?,
        upstream(
            AUTH_SERVICE,
            "AUTH_SERVICE_URL",
            &config.auth_service_url,
            settings,
            resolver,
            config.event_streams_per_connection as usize,
        )?,
    ];
    // The auth service serves four of the contract's services on one
    // channel (readiness asks it once, as the auth service).
    let on_auth = |service| endpoints::Upstream {
        service,
        channel: auth.channel.clone(),
        streams: auth.streams.clone(),
        trace: auth.trace.clone(),
    };
    let (clients, consents, tokens) = (
        on_auth(CLIENT_SERVICE),
        on_auth(CONSENT_SERVICE),
        on_auth(TOKEN_SERVICE),
    );
    let oauth = (auth.channel.clone(), auth.trace.clone());
    // The account pages call the user service on the contract's channel.
    let users = (user.channel.clone(), user.trace.clone());
    let upstreams = [user, auth];
    let endpoints = endpoints::Endpoints::resolve(
        routes.into_routes(),
        &[&upstreams[0], &upstreams[1], &clients, &consents, &tokens],
    )?;
    // Tokens are verified here, locally, with the auth service's public keys
    // (fetched on first need and when an unknown key id shows up).
    let source = config
        .jwks_source()
        .map_err(|e| Error::Jwks(e.to_string()))?;
    let keys = suite_tokens::jwks::KeyCache::new(Some(source), config.keys.jwks_refresh_min);
    let verifier = suite_tokens::Verifier::new(
        keys,
        config
            .tokens
            .rules(vec![config.access_token_audience.clone()]),
    )
    .with_revocations(revocations)
    // Personal access tokens: exchanged at the auth service once per token
    // every few minutes; what they stand for is forwarded in their place.
    .with_exchange(Arc::new(policy::exchange::AuthExchange {
        channel: oauth.0.clone(),
        trace: oauth.1.clone(),
        timeout: config.request_timeout,
    }));
    let redis = config
        .redis
        .connect()
        .map_err(|e| Error::Redis(e.to_string()))?;
    let limits = rate_limit::RateLimits::with_redis(
        &rate_limit::RateLimitSettings {
            per_second: config.rate_limit_per_second,
            burst: config.rate_limit_burst,
            sensitive_per_minute: config.auth_rate_limit_per_minute,
            sensitive_burst: config.auth_rate_limit_burst,
            trusted_proxies: config.trusted_proxies.clone(),
        },
        redis,
    );
    let state = Arc::new(state::AppState {
        endpoints,
        verifier,
        limits,
        upstreams: upstreams
            .into_iter()
            .map(|u| (u.service, u.channel))
            .collect(),
        budget: config.request_timeout,
        max_body_bytes: config.max_body_bytes as usize,
        forwarding_secret: config.forwarding_secret.clone(),
        event_streams: sse::StreamLimits::new(config),
        keep_alive: config.event_stream_keep_alive,
        closing: tokio::sync::watch::Sender::new(false),
    });
    let closing = state.closing.clone();
    // The OAuth endpoints and pages: OAuthService calls on the auth channel.
    let oidc_state = Arc::new(oidc::OidcState {
        auth: oauth.0,
        trace: oauth.1,
        user: users.0,
        user_trace: users.1,
        limits: state.limits.clone(),
        budget: config.request_timeout,
        forwarding_secret: config.forwarding_secret.clone(),
        discovery: tokio::sync::OnceCell::new(),
        branding: oidc::branding::Branding::load(&config.branding)?,
    });
    // The contract's routes: the handler that transcodes, calls and answers,
    // under the layers of what every call needs, innermost first. Each acts
    // on the matched route (the match is computed once, by the first that
    // needs it); the 404s and 405s fall through to the handler.
    let contract = Router::new()
        .fallback(forward::forward)
        // A body is bounded (413) and JSON (415) before it is transcoded.
        .layer(from_fn_with_state(state.clone(), body::limit_body))
        // A protected route without a valid token is 401 before any service is called.
        .layer(from_fn_with_state(
            state.clone(),
            authenticate::authenticate,
        ))
        // Over its bucket a client is 429 before it costs a token check.
        .layer(from_fn_with_state(state.clone(), rate_limit::limit))
        // Every answer and problem of the contract carries the request id
        // (the gateway's own routes below are not requests to trace back).
        .layer(from_fn(request_id::request_id))
        .with_state(state.clone());
    let router = Router::new()
        // Liveness: the process answers.
        .route(
            HEALTH_PATH,
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route(
            OPENAPI_PATH,
            get(move || {
                let body = openapi.clone();
                async move { ([(::http::header::CONTENT_TYPE, "application/json")], body) }
            }),
        )
        // The API explorer over that document, and its assets.
        .merge(explorer::router())
        // `/metrics` and `/readyz` are not here: they are on the admin port,
        // and here they are unknown paths like any other (404).
        .fallback_service(contract)
        .with_state(state.clone())
        // The OAuth 2.0 / OpenID Connect endpoints and the sign-in pages.
        .merge(oidc::router(oidc_state));
    // Metrics and liveness as every binary has them, and readiness: every
    // upstream's gRPC health says SERVING.
    let admin = suite_runtime::admin::admin_router().merge(
        Router::new()
            .route("/readyz", get(ready::ready))
            .with_state(state.clone()),
    );
    // Security headers, CORS and compression on every answer.
    let public = headers::secure(router, config)?
        // A HEAD's answer is its GET's, without the body: outside
        // compression, so that its headers are the GET's too.
        .layer(from_fn(head::head))
        // Discovery, JWKS, token and userinfo open to any origin (SPAs).
        .layer(from_fn(oidc::cors::open))
        // Outermost: the server span and metrics cover everything, 429s included.
        .layer(from_fn_with_state(state, observe::observe));
    Ok(Apps {
        public,
        admin,
        closing,
    })
}

/// Past the request budget, for the last answers to be written (as the
/// services' `suite_grpc::server` allows past their call timeout).
const DRAIN_SLACK: Duration = Duration::from_secs(1);

/// Serves the gateway on `listener` (and its admin routes on `ADMIN_ADDR`,
/// if set) until `shutdown` completes, then stops without losing a request:
/// readiness turns 503 and the event streams end at once, answers close
/// their connections, and in-flight requests finish (see [`listen`]).
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let admin = match config.admin.admin_addr {
        Some(addr) => Some(
            suite_runtime::listen::bind(addr)
                .await
                .map_err(Error::Admin)?,
        ),
        None => None,
    };
    serve_with_admin(config, listener, admin, shutdown).await
}

/// [`serve`] with the admin listener already bound (or none): the launcher
/// and the tests bind port 0 and read the address first. `ADMIN_ADDR` is
/// not read here.
pub async fn serve_with_admin(
    config: Config,
    listener: TcpListener,
    admin: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    // Revoked sessions and users, from the events: refused here at once.
    config.events.validate().map_err(Error::Events)?;
    let bus = config
        .events
        .bus(<Gateway as suite_runtime::runner::Service>::NAME)
        .await
        .map_err(|e| Error::Events(e.to_string()))?;
    let revocations = config.tokens.revocations();
    let following = suite_events::revocations::follow(bus, revocations.clone());
    let Apps {
        public,
        admin: admin_app,
        closing,
    } = Builder::new(&config).revocations(revocations).build()?;
    // First of the stop: readiness turns 503 (`ready`), and the event
    // streams end, which the drain that follows would wait for in vain.
    let shutdown = async move {
        shutdown.await;
        closing.send_replace(true);
    };
    // Runs for as long as the public server does.
    let _admin = admin.map(|l| suite_runtime::admin::spawn_admin_on(l, admin_app));
    tracing::info!(addr = ?listener.local_addr().ok(), "gateway listening");
    let limits = listen::ConnectionLimits {
        header_read_timeout: config.header_read_timeout,
        max_connections: config.max_connections,
    };
    let drain = listen::Drain {
        delay: config.shutdown_drain_delay,
        idle_grace: config.shutdown_idle_grace,
        // Every request ends within its budget (504 upstream, 408 on a slow
        // body); past it only clients that do not read their answers remain.
        timeout: config.request_timeout + DRAIN_SLACK,
    };
    listen::serve(public, listener, limits, drain, shutdown).await;
    following.abort();
    tracing::info!("gateway stopped");
    Ok(())
}

/// The `suite-gateway` binary.
#[derive(Debug)]
pub struct Gateway;

impl suite_runtime::runner::Service for Gateway {
    type Config = Config;
    type Error = Error;
    const NAME: &'static str = "suite-gateway";
    const ABOUT: &'static str = "The suite's REST/JSON gateway";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    // Without an admin port, `healthcheck` can only ask for liveness.
    const PROBE: suite_runtime::runner::Probe = suite_runtime::runner::Probe::Http(HEALTH_PATH);
    const MIGRATES: bool = false;

    fn listen_addr(config: &Config) -> SocketAddr {
        config.listen_addr
    }

    /// Readiness on the admin port when there is one (compose waits for the
    /// services behind the gateway), else liveness on the public port.
    fn probe(config: &Config) -> (SocketAddr, suite_runtime::runner::Probe) {
        match config.admin.admin_addr {
            Some(admin) => (admin, suite_runtime::runner::Probe::Http("/readyz")),
            None => (config.listen_addr, Self::PROBE),
        }
    }

    fn serve(
        config: Config,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> impl Future<Output = Result<(), Error>> {
        serve(config, listener, shutdown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suite_runtime::runner::{Probe, Service as _};

    #[test]
    fn healthcheck_asks_readiness_on_the_admin_port_else_liveness_on_the_public_one() {
        let mut config = Config::defaults();
        config.listen_addr = SocketAddr::from(([0, 0, 0, 0], 8080));
        config.admin.admin_addr = None;
        let (addr, probe) = Gateway::probe(&config);
        assert_eq!(addr, config.listen_addr);
        assert!(matches!(probe, Probe::Http("/api/health")), "{probe:?}");

        config.admin.admin_addr = Some(SocketAddr::from(([0, 0, 0, 0], 9090)));
        let (addr, probe) = Gateway::probe(&config);
        assert_eq!(addr.port(), 9090);
        assert!(matches!(probe, Probe::Http("/readyz")), "{probe:?}");
    }
}
