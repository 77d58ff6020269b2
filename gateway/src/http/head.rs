//! `HEAD` wherever `GET` is (RFC 9110 §9.3.2): a `HEAD` is served as its
//! `GET` (the contract's routes and the gateway's own alike), and this
//! layer sends that answer's status and headers without its body, stating
//! the body's length where the `GET`'s answer states it. It sits outside
//! compression and rewrites the method before anything inside sees it, so
//! the headers are the `GET`'s exactly: axum's own `HEAD` handling drops
//! the body inside the router, before compression looks at it, and would
//! change `Vary`, `Content-Encoding` and `Content-Length`.
//!
//! An event stream's `HEAD` (see `sse`) asks the service as the `GET` does,
//! so its refusals show, but opens no stream: the call is dropped, and
//! with it the upstream stream, as soon as its head has arrived.

use axum::{
    body::{Body, HttpBody as _},
    extract::Request,
    middleware::Next,
    response::Response,
};
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use std::convert::Infallible;

/// Marks a request that came as a `HEAD` (and is served as its `GET`).
#[derive(Debug, Clone, Copy)]
pub struct Head;

/// The layer: a `HEAD` runs as its `GET` through everything inside, and
/// only its answer's body is dropped, so its headers are the `GET`'s.
pub async fn head(mut req: Request, next: Next) -> Response {
    if req.method() != Method::HEAD {
        return next.run(req).await;
    }
    *req.method_mut() = Method::GET;
    req.extensions_mut().insert(Head);
    without_body(next.run(req).await)
}

/// `response` with its body dropped and, if it had a known length and no
/// `Content-Length`, that length stated (as hyper states it for the `GET`).
fn without_body(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let length = body.size_hint().exact();
    if !parts.headers.contains_key(header::CONTENT_LENGTH)
        && may_state_length(parts.status)
        && let Some(length) = length
    {
        parts
            .headers
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    // Of unknown length, as the body was: axum's router states the length
    // of a known one (`Content-Length: 0` for an empty body), which would
    // tell the client the `GET` sends nothing.
    let nothing = match length {
        Some(_) => Body::empty(),
        None => Body::from_stream(futures_util::stream::empty::<Result<Bytes, Infallible>>()),
    };
    Response::from_parts(parts, nothing)
}

/// Statuses that never carry `Content-Length` (RFC 9110 §8.6).
fn may_state_length(status: StatusCode) -> bool {
    !(status.is_informational() || status == StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_body_goes_and_its_length_stays() {
        let response = Response::new(Body::from("{\"status\":\"ok\"}"));
        let head = without_body(response);
        assert_eq!(head.headers()[header::CONTENT_LENGTH], "15");
        let body = head.into_body().collect().await.expect("body").to_bytes();
        assert!(body.is_empty());

        // A length already stated is kept, none is made up for a 204.
        let mut stated = Response::new(Body::empty());
        stated
            .headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(1234));
        assert_eq!(
            without_body(stated).headers()[header::CONTENT_LENGTH],
            "1234"
        );
        let mut none = Response::new(Body::empty());
        *none.status_mut() = StatusCode::NO_CONTENT;
        assert!(
            !without_body(none)
                .headers()
                .contains_key(header::CONTENT_LENGTH)
        );

        // A stream of unknown length states none, and stays of unknown
        // length (for axum's router, which states known ones).
        let stream = futures_util::stream::iter([Ok::<_, Infallible>(Bytes::from("x"))]);
        let streamed = without_body(Response::new(Body::from_stream(stream)));
        assert!(!streamed.headers().contains_key(header::CONTENT_LENGTH));
        assert_eq!(streamed.body().size_hint().exact(), None);
        let body = streamed
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert!(body.is_empty());
    }
}
