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
