//! The routes resolved at start-up into what serves them (the upstream
//! channel, the client trace layer, the gRPC path), and the route match of
//! a request: computed by the first layer that asks for it, then shared by
//! the layers under it and the handler.

use crate::{
    contract::routes::{self, Bindings, NoRoute, Route},
    http::problem::Problem,
    state::SharedState,
    upstream::lanes::Lanes,
};
use axum::extract::FromRequestParts;
use http::{HeaderValue, StatusCode, header, request::Parts, uri::PathAndQuery};
use std::{convert::Infallible, sync::Arc};
use suite_grpc::balance::Balanced;
use suite_telemetry::grpc_client::TraceClientLayer;

/// One route with everything a call on it needs.
#[derive(Debug)]
pub struct Endpoint {
    pub route: Route,
    /// The service's channel, balanced over its replicas.
    pub upstream: Balanced,
    /// The service's channels for event streams (which never take the
    /// calls' channel).
    pub streams: Arc<Lanes>,
    /// Client spans and trace propagation for the calls.
    pub trace: TraceClientLayer,
    /// `/{service}/{method}`.
    pub grpc_path: PathAndQuery,
    /// The `Cache-Control` of a success, for a route that may be cached.
    pub cache_control: Option<HeaderValue>,
}

/// A service the routes may call: its full name, channels and trace layer.
pub struct Upstream {
    pub service: &'static str,
    pub channel: Balanced,
    pub streams: Arc<Lanes>,
    pub trace: TraceClientLayer,
}

#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("no upstream for {0}")]
    NoUpstream(String),
    #[error("bad gRPC path for {0}")]
    Path(String),
}

#[derive(Debug)]
pub struct Endpoints {
    /// In route-table order (most specific templates first).
    entries: Vec<Arc<Endpoint>>,
}

impl Endpoints {
    /// Each route with its service's upstream.
    pub fn resolve(routes: Vec<Route>, upstreams: &[&Upstream]) -> Result<Self, EndpointError> {
        let entries = routes
            .into_iter()
            .map(|route| {
                let service = route.method.parent_service();
                let upstream = upstreams
                    .iter()
                    .find(|u| u.service == service.full_name())
                    .ok_or_else(|| EndpointError::NoUpstream(service.full_name().to_owned()))?;
                let path = format!("/{}/{}", service.full_name(), route.method.name());
                let grpc_path = PathAndQuery::try_from(path.as_str())
                    .map_err(|_| EndpointError::Path(path.clone()))?;
                let cache_control = route.cache_max_age.and_then(|age| {
                    HeaderValue::from_str(&format!("public, max-age={}", age.as_secs())).ok()
                });
                Ok(Arc::new(Endpoint {
                    route,
                    upstream: upstream.channel.clone(),
                    streams: upstream.streams.clone(),
                    trace: upstream.trace.clone(),
                    grpc_path,
                    cache_control,
                }))
            })
            .collect::<Result<_, EndpointError>>()?;
        Ok(Self { entries })
    }

    pub fn find(
        &self,
        method: &http::Method,
        path: &str,
    ) -> Result<(Arc<Endpoint>, Bindings), NoRoute> {
        routes::find(&self.entries, |e| &e.route, method, path).map(|(e, vars)| (e.clone(), vars))
    }
}

/// The route match of a request (an extractor: the first use computes it
/// and leaves it in the request's extensions for the next).
#[derive(Debug, Clone)]
pub struct Matched(Arc<Result<(Arc<Endpoint>, Bindings), NoRoute>>);

impl Matched {
    /// The endpoint, when a route matched.
    pub fn endpoint(&self) -> Option<&Endpoint> {
        self.0.as_ref().as_ref().ok().map(|(e, _)| e.as_ref())
    }

    /// The endpoint, owned, for what outlives the handler (an event stream).
    pub fn owned_endpoint(&self) -> Option<Arc<Endpoint>> {
        self.0.as_ref().as_ref().ok().map(|(e, _)| e.clone())
    }

    /// The endpoint and the path variables, or the 404 / 405 problem.
    pub fn found(&self) -> Result<(&Endpoint, &Bindings), Problem> {
        match self.0.as_ref() {
            Ok((endpoint, vars)) => Ok((endpoint, vars)),
            Err(NoRoute::NotFound) => Err(Problem::new(StatusCode::NOT_FOUND, "no such route")),
            Err(NoRoute::MethodNotAllowed(allowed)) => {
                let allow = allowed
                    .iter()
                    .map(http::Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let p = Problem::new(StatusCode::METHOD_NOT_ALLOWED, format!("allowed: {allow}"));
                Err(match HeaderValue::from_str(&allow) {
                    Ok(v) => p.with_header(header::ALLOW, v),
                    Err(_) => p,
                })
            }
        }
    }
}

impl FromRequestParts<SharedState> for Matched {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Infallible> {
        if let Some(matched) = parts.extensions.get::<Self>() {
            return Ok(matched.clone());
        }
        let matched = Self(Arc::new(
            state.endpoints.find(&parts.method, parts.uri.path()),
        ));
        parts.extensions.insert(matched.clone());
        Ok(matched)
    }
}
