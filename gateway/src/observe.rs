//! The HTTP server span and metrics of every request: the span continues the
//! client's `traceparent` and follows the OpenTelemetry HTTP conventions
//! (`http.request.method`, `http.route`, `url.path` without the query, which
//! may carry secrets, `http.response.status_code`; 5xx is an error).

use crate::app::Shared;
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use std::time::Instant;
use suite_shared::metrics::{HttpLabels, metrics};
use tracing::Instrument;

/// The gateway's own fixed routes, which are their own templates.
const FIXED_ROUTES: &[&str] = &["/api/health", "/readyz", "/api/openapi.json", "/metrics"];

/// The route lookup of a request, done once here for the span and the handler.
#[derive(Debug, Clone)]
pub struct Matched(pub Result<(usize, crate::routes::Bindings), crate::routes::NoRoute>);

pub async fn observe(State(gw): State<Shared>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    // The route is known before the span opens: a span's name cannot change
    // once its context has been built (for the log lines' trace ids).
    let found = gw.routes.find_index(req.method(), &path);
    let route = match &found {
        Ok((i, _)) => gw.routes.get(*i).map(|r| r.template.as_str().to_owned()),
        Err(_) => FIXED_ROUTES.contains(&path.as_str()).then(|| path.clone()),
    };
    // The handler takes the match from here instead of looking it up again.
    let mut req = req;
    req.extensions_mut().insert(Matched(found));
    let name = match &route {
        Some(r) => format!("{method} {r}"),
        None => method.clone(),
    };
    // Probes and scrapes would be most of the traces and none of the
    // interest: metrics only.
    let quiet = matches!(path.as_str(), "/readyz" | "/api/health" | "/metrics");
    let span = if quiet {
        tracing::Span::none()
    } else {
        tracing::info_span!(
        "http.server",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        url.path = %path,
        url.scheme = "http",
        http.route = tracing::field::Empty,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        )
    };
    if let Some(r) = &route {
        span.record("http.route", r.as_str());
    }
    suite_shared::telemetry::continue_trace(&span, req.headers());
    let m = metrics();
    m.http_server_active.inc();
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;

    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 500 {
        suite_shared::telemetry::set_error(&span, &status.to_string());
    }
    m.http_server_duration
        .get_or_create(&HttpLabels {
            http_request_method: method,
            // Unmatched paths share one label: they are unbounded.
            http_route: route.unwrap_or_default(),
            http_response_status_code: status,
        })
        .observe(started.elapsed().as_secs_f64());
    m.http_server_active.dec();
    response
}
