//! The request body of a route: at most `MAX_BODY_BYTES` (413 above) and
//! JSON when there is one (415 otherwise), read whole before the handler
//! transcodes it, and handed to the handler as it was read ([`ReadBody`]).

use crate::{contract::endpoints::Matched, http::problem::Problem, state::SharedState};
use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};

/// A route's request body, read whole and checked by [`limit_body`]: in the
/// request's extensions, so the handler takes the bytes without reading a
/// body again.
#[derive(Debug, Clone)]
pub struct ReadBody(pub Bytes);

/// The layer: a body is bounded in size and time before anything is
/// transcoded, so a large or trickled body costs no upstream call.
pub async fn limit_body(
    State(gw): State<SharedState>,
    matched: Matched,
    req: Request,
    next: Next,
) -> Response {
    // The gateway's own routes and the 404s / 405s take no body.
    if matched.endpoint().is_none() {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    // A body trickled in byte by byte must not hold the connection past the
    // request's budget.
    let read = tokio::time::timeout(gw.budget, axum::body::to_bytes(body, gw.max_body_bytes));
    let body = match read.await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => {
            return Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {} bytes", gw.max_body_bytes),
            )
            .into_response();
        }
        Err(_) => {
            let mut slow = Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "the request body took too long to arrive",
            )
            .into_response();
            slow.headers_mut()
                .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
            return slow;
        }
    };
    if !body.is_empty() && !is_json(&parts.headers) {
        return Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send JSON: Content-Type: application/json",
        )
        .into_response();
    }
    parts.extensions.insert(ReadBody(body));
    next.run(Request::from_parts(parts, Body::empty())).await
}

/// `application/json` or any `application/*+json`, parameters aside.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}
