//! The request id (`x-request-id`): the client's when it is sane, else a
//! new UUIDv7; on the response, on every problem, and sent on to the
//! services. Current for the whole request as a task-local, like the trace.

use axum::{extract::Request, middleware::Next, response::Response};
use http::{HeaderMap, HeaderValue};

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: HeaderValue;
}

/// The id of the request being served, if any.
pub fn current() -> Option<HeaderValue> {
    CURRENT.try_with(HeaderValue::clone).ok()
}

/// The client's id: printable ASCII, at most 128 bytes.
fn accepted(headers: &HeaderMap) -> Option<HeaderValue> {
    headers
        .get(HEADER)
        .filter(|v| {
            let v = v.as_bytes();
            !v.is_empty() && v.len() <= 128 && v.iter().all(u8::is_ascii_graphic)
        })
        .cloned()
}

/// The layer: the id is current while the request is served, and answered.
pub async fn request_id(req: Request, next: Next) -> Response {
    let id = accepted(req.headers())
        .or_else(|| HeaderValue::from_str(&uuid::Uuid::now_v7().to_string()).ok());
    let Some(id) = id else {
        return next.run(req).await;
    };
    let mut response = CURRENT.scope(id.clone(), next.run(req)).await;
    response.headers_mut().insert(HEADER, id);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_sane_client_id_is_kept() {
        let mut headers = HeaderMap::new();
        assert_eq!(accepted(&headers), None);
        headers.insert(HEADER, HeaderValue::from_static("req-42"));
        assert_eq!(accepted(&headers), Some(HeaderValue::from_static("req-42")));
        headers.insert(HEADER, HeaderValue::from_static("has space"));
        assert_eq!(accepted(&headers), None);
        headers.insert(
            HEADER,
            HeaderValue::from_str(&"x".repeat(129)).expect("ascii"),
        );
        assert_eq!(accepted(&headers), None);
    }
}
