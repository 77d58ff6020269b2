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

/// ResourceExhausted for too many failed password checks, with the wait as a
/// `google.rpc.RetryInfo` (whole seconds, rounded up, so a client never
/// retries too early).
pub fn throttled(wait: std::time::Duration) -> Status {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let details = ErrorDetails::with_retry_info(Some(std::time::Duration::from_secs(secs.max(1))));
    Status::with_error_details(
        Code::ResourceExhausted,
        format!(
            "too many failed password checks; try again in {} s",
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
