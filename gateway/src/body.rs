//! The request body of a route: at most `MAX_BODY_BYTES` (413 above) and
//! JSON when there is one (415 otherwise), read whole before the handler
//! transcodes it.

use crate::{endpoints::Matched, problem::Problem, state::Shared};
use axum::{
    body::Body,
    extract::{Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, StatusCode, header};

/// The layer.
pub async fn limit_body(
    State(gw): State<Shared>,
    matched: Matched,
    req: Request,
    next: Next,
) -> Response {
    // The gateway's own routes and the 404s / 405s take no body.
    if matched.endpoint().is_none() {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
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
    next.run(Request::from_parts(parts, Body::from(body))).await
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
