//! The HTTP server span and metrics of every request: the span continues the
//! client's `traceparent` and follows the OpenTelemetry HTTP conventions
//! (`http.request.method`, `http.route`, `url.path` without the query, which
//! may carry secrets, `http.response.status_code`; 5xx is an error).

use crate::contract::endpoints::Matched;
use axum::{extract::Request, middleware::Next, response::Response};
use opentelemetry::{KeyValue, context::FutureExt as _, trace::SpanKind};
use std::borrow::Cow;
use std::time::Instant;
use suite_telemetry::{
    metrics::{HttpLabels, metrics},
    spans::{Span, Tracer},
};

/// The gateway's own fixed routes, which are their own templates.
/// (`/metrics` and `/readyz` are on the admin port, which is not observed.)
const FIXED_ROUTES: &[&str] = &[crate::HEALTH_PATH, crate::OPENAPI_PATH];

/// The gateway's tracer (its spans' service), looked up once telemetry is set up.
fn tracer() -> &'static Tracer {
    static TRACER: std::sync::OnceLock<Tracer> = std::sync::OnceLock::new();
    TRACER.get_or_init(|| Tracer::of(<crate::Gateway as suite_runtime::runner::Service>::NAME))
}

/// The layer: outermost, so that the span and the metrics cover every
/// answer, the other layers' refusals included.
pub async fn observe(matched: Matched, req: Request, next: Next) -> Response {
    let method = known_method(req.method()).to_owned();
    let path = req.uri().path().to_owned();
    // The route names the span, so it is matched before the span starts.
    let route = match matched.endpoint() {
        Some(e) => Some(e.route.template.as_str().to_owned()),
        None => (FIXED_ROUTES.contains(&path.as_str())
            || crate::oidc::ROUTES.contains(&path.as_str()))
        .then(|| path.clone()),
    };
    // Probes and scrapes would be most of the traces and none of the
    // interest: metrics only.
    let quiet = path == crate::HEALTH_PATH;
    let span = if quiet {
        Span::none()
    } else {
        let parent = suite_telemetry::extract(req.headers());
        tracer().start(
            SpanKind::Server,
            &parent,
            || match &route {
                Some(r) => Cow::Owned(format!("{method} {r}")),
                None => Cow::Owned(method.clone()),
            },
            || {
                let mut attributes = vec![
                    KeyValue::new("http.request.method", method.clone()),
                    KeyValue::new("url.path", path.clone()),
                    KeyValue::new("url.scheme", "http"),
                ];
                if let Some(r) = &route {
                    attributes.push(KeyValue::new("http.route", r.clone()));
                }
                attributes
            },
        )
    };
    let m = metrics();
    m.http_server_active.inc();
    let started = Instant::now();
    // The handler (and the calls it makes) runs with the span current.
    let response = next.run(req).with_context(span.context().clone()).await;

    let status = response.status().as_u16();
    span.set_attributes(|| {
        [KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        )]
    });
    if status >= 500 {
        span.set_error(status.to_string());
    }
    span.end();
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

/// The request's method as a label: one of the HTTP methods, or `_OTHER`
/// (the OpenTelemetry convention), so invented methods add no series.
fn known_method(method: &http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "CONNECT" => "CONNECT",
        "OPTIONS" => "OPTIONS",
        "TRACE" => "TRACE",
        "PATCH" => "PATCH",
        _ => "_OTHER",
    }
}
