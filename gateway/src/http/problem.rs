//! Errors as RFC 9457 problem details (`application/problem+json`), and the
//! one mapping from gRPC status codes to HTTP statuses.

use crate::contract::names::json_field_path;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use tonic::Code;
use tonic_types::StatusExt;

/// A problem to report to the client.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub detail: String,
    /// (field, what is wrong), with JSON field names.
    pub violations: Vec<(String, String)>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            violations: Vec::new(),
            headers: Vec::new(),
        }
    }

    pub fn bad_field(field: &str, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let mut p = Self::new(StatusCode::BAD_REQUEST, format!("{field}: {detail}"));
        p.violations.push((field.to_owned(), detail));
        p
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// A 401: the request needs a (valid) bearer token.
    pub fn unauthenticated(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail).challenge()
    }

    /// Tells the client which scheme authenticates (RFC 9110 §11.6.1).
    fn challenge(self) -> Self {
        self.with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
    }

    /// The problem for a gRPC error. Internal details never pass: for the
    /// codes that mean "our fault" the message is replaced.
    pub fn from_status(status: &tonic::Status) -> Self {
        let http = http_status(status.code());
        let detail = match status.code() {
            Code::Unknown | Code::Internal | Code::DataLoss => "internal error".to_owned(),
            Code::Unavailable => "a service is unavailable; try again shortly".to_owned(),
            Code::DeadlineExceeded => "the request took too long".to_owned(),
            // Transport-level cancellations describe connections, not the request.
            Code::Cancelled => "the request was cancelled".to_owned(),
            _ => status.message().to_owned(),
        };
        let mut problem = Self::new(http, detail);
        if let Some(bad) = status.get_details_bad_request() {
            problem.violations = bad
                .field_violations
                .into_iter()
                .map(|v| (json_field_path(&v.field), v.description))
                .collect();
        }
        if status.code() == Code::Unauthenticated {
            problem = problem.challenge();
        }
        let retry = status.get_details_retry_info().and_then(|r| r.retry_delay);
        // Every Unavailable is worth retrying: say when, if the service did not.
        let retry = retry.or((status.code() == Code::Unavailable)
            .then_some(suite_grpc::status::UNAVAILABLE_RETRY_AFTER));
        if let Some(retry) = retry {
            let secs = suite_grpc::status::whole_seconds(retry);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                problem = problem.with_header(header::RETRY_AFTER, v);
            }
        }
        problem
    }
}

/// The standard mapping of gRPC codes to HTTP statuses.
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        // 499 "client closed request" is not in http's list of names.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Where a problem happened, for its body: the request id and the trace id.
/// Taken at once for an answer; kept for a problem sent later, in an event
/// stream, when the request's task-locals are gone.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
}

impl Origin {
    /// The request's and the trace's, as current now.
    pub fn current() -> Self {
        Self {
            request_id: crate::http::request_id::current()
                .and_then(|id| id.to_str().ok().map(str::to_owned)),
            trace_id: suite_telemetry::current_trace_id(),
        }
    }
}

impl Problem {
    /// The `application/problem+json` body.
    pub fn body(&self, origin: &Origin) -> serde_json::Value {
        let title = match self.status.as_u16() {
            499 => "Client Closed Request",
            _ => self.status.canonical_reason().unwrap_or("Error"),
        };
        let mut body = serde_json::json!({
            "type": "about:blank",
            "title": title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(id) = &origin.request_id {
            body["requestId"] = serde_json::Value::String(id.clone());
        }
        // A bug report quoting the body leads straight to the trace.
        if let Some(trace_id) = &origin.trace_id {
            body["traceId"] = serde_json::Value::String(trace_id.clone());
        }
        if !self.violations.is_empty() {
            body["errors"] = self
                .violations
                .iter()
                .map(|(field, message)| serde_json::json!({ "field": field, "message": message }))
                .collect();
        }
        body
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = self.body(&Origin::current());
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_standard_statuses_and_names_to_json() {
        assert_eq!(http_status(Code::AlreadyExists), StatusCode::CONFLICT);
        assert_eq!(http_status(Code::Cancelled).as_u16(), 499);
        assert_eq!(
            http_status(Code::DeadlineExceeded),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(json_field_path("user.display_name"), "user.displayName");
        assert_eq!(json_field_path("new_password"), "newPassword");
        let internal = Problem::from_status(&tonic::Status::internal(
            "SELECT * FROM users failed at 10.0.0.3",
        ));
        assert_eq!(internal.detail, "internal error");
    }
}
