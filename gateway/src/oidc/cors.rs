//! CORS for the endpoints a single-page app calls from another origin:
//! discovery, JWKS, token and userinfo answer any origin, without
//! credentials (no cookies: these take a bearer token or a form, never the
//! browser session). Never the pages, whose forms must stay same-origin.

use axum::{extract::Request, middleware::Next, response::Response};
use http::{HeaderValue, Method, StatusCode, header};

use super::{DISCOVERY_PATH, JWKS_PATH, TOKEN_PATH, USERINFO_PATH};

const OPEN: [&str; 4] = [DISCOVERY_PATH, JWKS_PATH, TOKEN_PATH, USERINFO_PATH];

/// The layer: preflights answered here, answers marked open.
pub async fn open(req: Request, next: Next) -> Response {
    if !OPEN.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let preflight = req.method() == Method::OPTIONS
        && req.headers().contains_key(header::ORIGIN)
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = if preflight {
        let mut r = Response::new(axum::body::Body::empty());
        *r.status_mut() = StatusCode::NO_CONTENT;
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
        r
    } else {
        next.run(req).await
    };
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.remove(header::ACCESS_CONTROL_ALLOW_CREDENTIALS);
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("www-authenticate, retry-after"),
    );
    response
}
