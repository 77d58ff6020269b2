//! Security headers every answer carries: what helmet gives Express apps, as
//! fits a JSON API; CORS from an allowlist; compression (whose default
//! predicate leaves `text/event-stream` alone: events are not held back).

use crate::{Config, Error};
use axum::Router;
use http::{HeaderName, HeaderValue, Method, header};
use std::time::Duration;
use tower_http::{
    compression::CompressionLayer,
    cors::{AllowOrigin, CorsLayer},
    set_header::SetResponseHeaderLayer,
};

/// Headers set on every response unless the handler set them.
const ALWAYS: [(&str, &str); 6] = [
    // Never guess a content type from the bytes.
    ("x-content-type-options", "nosniff"),
    // A JSON API is never framed, and runs no scripts of its own.
    ("x-frame-options", "DENY"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-resource-policy", "same-origin"),
    // Tokens and personal data must not land in any cache.
    ("cache-control", "no-store"),
];

pub fn secure(router: Router, config: &Config) -> Result<Router, Error> {
    let mut router = router;
    for (name, value) in ALWAYS {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    if config.hsts_max_age_secs > 0 {
        let value = HeaderValue::from_str(&format!(
            "max-age={}; includeSubDomains",
            config.hsts_max_age_secs
        ))
        .map_err(|e| Error::Hsts(e.to_string()))?;
        router = router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            value,
        ));
    }
    // Parsed at start-up; an empty entry (`a,,b`) allows nothing.
    let origins: Vec<HeaderValue> = config
        .cors_allowed_origins
        .iter()
        .filter(|o| !o.is_empty())
        .cloned()
        .collect();
    if !origins.is_empty() {
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([
                    Method::GET,
                    Method::POST,
                    Method::PATCH,
                    Method::PUT,
                    Method::DELETE,
                ])
                .allow_headers([
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    HeaderName::from_static("x-request-id"),
                    // An event stream's reconnect (`sse`).
                    HeaderName::from_static("last-event-id"),
                ])
                .expose_headers([
                    HeaderName::from_static("x-request-id"),
                    header::LOCATION,
                    header::RETRY_AFTER,
                ])
                .max_age(Duration::from_secs(600)),
        );
    }
    Ok(router.layer(CompressionLayer::new()))
}
