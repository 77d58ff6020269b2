//! What every layer and the handler share: the resolved routes, the token
//! verifier, the rate limits and the request settings.

use crate::{contract::endpoints::Endpoints, policy::rate_limit::RateLimits};
use std::{sync::Arc, time::Duration};
use suite_grpc::balance::Balanced;

pub struct AppState {
    pub endpoints: Endpoints,
    /// Verifies access tokens before anything is forwarded.
    pub verifier: suite_tokens::Verifier,
    pub limits: Arc<RateLimits>,
    /// Each service's channel by its full name, for readiness.
    pub upstreams: Vec<(&'static str, Balanced)>,
    /// Each call's time budget.
    pub budget: Duration,
    pub max_body_bytes: usize,
    /// Proves to the services that the client's address is the gateway's word.
    pub forwarding_secret: Option<secrecy::SecretString>,
    /// The event streams open: in all, per user and per client address.
    pub event_streams: crate::upstream::sse::StreamLimits,
    /// The silence after which an event stream sends a keep-alive comment.
    pub keep_alive: Duration,
    /// True once the server stops: `/readyz` answers 503 (balancers move
    /// away first), and open event streams end (clients resume elsewhere),
    /// or the drain of in-flight requests would wait for them.
    pub closing: tokio::sync::watch::Sender<bool>,
}

/// The state as every layer and the handler hold it.
pub type SharedState = Arc<AppState>;
