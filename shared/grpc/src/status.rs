//! Statuses every service answers alike.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// InvalidArgument naming every bad field, in the message and as a
/// `google.rpc.BadRequest` detail.
pub fn invalid_argument<F, D>(violations: impl IntoIterator<Item = (F, D)>) -> Status
where
    F: Into<String>,
    D: Into<String>,
{
    let mut details = ErrorDetails::new();
    let mut summary = Vec::new();
    for (field, description) in violations {
        let (field, description) = (field.into(), description.into());
        summary.push(format!("{field}: {description}"));
        details.add_bad_request_violation(field, description);
    }
    Status::with_error_details(Code::InvalidArgument, summary.join("; "), details)
}

/// `wait` in whole seconds, rounded up: a client told to wait this long
/// never retries too early.
pub fn whole_seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// ResourceExhausted for too many failed password checks, with the wait as a
/// `google.rpc.RetryInfo` (whole seconds, rounded up, so a client never
/// retries too early).
pub fn throttled(wait: std::time::Duration) -> Status {
    let secs = whole_seconds(wait);
    let details = ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(secs.max(1))));
    Status::with_error_details(
        Code::ResourceExhausted,
        format!(
            "too many failed sign-in attempts (passwords or codes); try again in {} s",
            secs.max(1)
        ),
        details,
    )
}

/// The wait of a [`throttled`] status, if `status` is one.
pub fn throttled_wait(status: &Status) -> Option<std::time::Duration> {
    if status.code() != Code::ResourceExhausted {
        return None;
    }
    status.get_details_retry_info()?.retry_delay
}

/// How long a client should wait before retrying an Unavailable call.
pub const UNAVAILABLE_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// Unavailable (a fault that a retry can clear: a database or a service
/// down, overloaded or restarting), with a `google.rpc.RetryInfo` of
/// [`UNAVAILABLE_RETRY_AFTER`] (REST: 503 with Retry-After).
pub fn unavailable(message: impl Into<String>) -> Status {
    let details = ErrorDetails::with_retry_info(Some(UNAVAILABLE_RETRY_AFTER));
    Status::with_error_details(Code::Unavailable, message, details)
}

/// A status the client made of a broken call rather than one the server
/// sent: the peer vanished mid-call (killed, its connection reset), which
/// tonic reports as Unknown, Internal or Cancelled with the transport's
/// error as its source. That is Unavailable (the call may or may not have
/// been applied, and a retry can reach another replica), or
/// DeadlineExceeded when the cause is our own timeout. A server's answer
/// (which has no source) is returned as it is.
pub fn from_transport(status: Status) -> Status {
    use std::error::Error as _;
    let Some(source) = status.source() else {
        return status;
    };
    if !matches!(
        status.code(),
        Code::Unknown | Code::Internal | Code::Cancelled
    ) {
        return status;
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(source);
    while let Some(e) = cause {
        if e.is::<tonic::TimeoutExpired>() {
            return Status::deadline_exceeded("the call took too long");
        }
        cause = e.source();
    }
    unavailable(format!("the call's connection broke: {}", status.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_answer_is_kept_and_a_broken_call_is_unavailable() {
        // As decoded from a server's trailers: no source.
        let answered = Status::internal("internal error");
        assert_eq!(from_transport(answered).code(), Code::Internal);
        let broken = Status::from_error(Box::new(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )));
        assert_eq!(broken.code(), Code::Unknown);
        let mapped = from_transport(broken);
        assert_eq!(mapped.code(), Code::Unavailable);
        assert_eq!(
            mapped.get_details_retry_info().and_then(|r| r.retry_delay),
            Some(UNAVAILABLE_RETRY_AFTER)
        );
        let timed_out = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(from_transport(timed_out).code(), Code::DeadlineExceeded);
        let refused = Status::from_error(Box::new(Status::permission_denied("no")));
        assert_eq!(from_transport(refused).code(), Code::PermissionDenied);
    }
}
