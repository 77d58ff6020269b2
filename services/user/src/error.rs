//! The user service's one error type (no transport inside), and its one
//! mapping to `tonic::Status`, which the gRPC adapter applies.

use crate::store::StoreError;
use suite_tokens::Refusal;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A bad input field: which one, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid argument")]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0}")]
    PermissionDenied(&'static str),
    /// The caller's token is good but does not allow the call (an OAuth
    /// token without the method's scope, a client's own token where a
    /// user's is needed).
    #[error("{0}")]
    ScopeRefused(Refusal),
    /// The caller's bearer token was refused (why, in words for the caller).
    #[error("{0}")]
    TokenRefused(String),
    #[error("user not found")]
    NotFound,
    #[error("a user with this {0} already exists")]
    AlreadyExists(&'static str),
    #[error("{0}")]
    Aborted(&'static str),
    #[error("{0}")]
    ResourceExhausted(&'static str),
    /// A mailed link's token that is unknown, used, expired, or for a state
    /// that changed since (one answer for all: a guess learns nothing).
    #[error("{}", crate::core::email::SPENT_TOKEN)]
    LinkSpent,
    /// The call is right but the user's state does not allow it now.
    #[error("{0}")]
    FailedPrecondition(&'static str),
    /// Too many wrong passwords for the account; try again after the delay.
    #[error("too many failed password checks")]
    Throttled(std::time::Duration),
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(field) => Self::AlreadyExists(field),
            StoreError::Unavailable(_, msg) => Self::Unavailable(msg),
            StoreError::TokenSpent => Self::LinkSpent,
            StoreError::Other(msg) => Self::Internal(msg),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument(violations) => suite_grpc::status::invalid_argument(
                violations.into_iter().map(|v| (v.field, v.description)),
            ),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::ScopeRefused(r) => suite_tokens::grpc::refusal_status(&r),
            Error::TokenRefused(m) => Status::unauthenticated(m),
            Error::NotFound => Status::not_found("user not found"),
            Error::AlreadyExists(field) => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation(field, "is already taken");
                Status::with_error_details(
                    Code::AlreadyExists,
                    format!("a user with this {field} already exists"),
                    details,
                )
            }
            Error::Aborted(m) => Status::aborted(m),
            Error::ResourceExhausted(m) => Status::resource_exhausted(m),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
            Error::LinkSpent => Status::not_found(crate::core::email::SPENT_TOKEN),
            Error::Throttled(wait) => suite_grpc::status::throttled(wait),
            // The detail (driver message, address) is for the log, not the client.
            Error::Unavailable(_) => {
                suite_grpc::status::unavailable("the user store is unavailable; try again shortly")
            }
            // The detail is logged once, by `suite_grpc::server::reply`.
            Error::Internal(_) => Status::internal("internal error"),
        }
    }
}

/// Why the service could not start (or migrate): each names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("invalid DATABASE_URL: {0}")]
    Store(String),
    #[error("password hashing: {0}")]
    Hasher(String),
    /// Its message already says "event bus".
    #[error(transparent)]
    Events(#[from] suite_events::Error),
    #[error("{0}")]
    Redis(String),
    #[error("mail: {0}")]
    Mail(String),
    #[error(transparent)]
    Serve(#[from] suite_grpc::server::ServeError),
}

impl From<suite_grpc::paging::PagingError> for Error {
    fn from(e: suite_grpc::paging::PagingError) -> Self {
        Self::invalid(e.field, e.description)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suite_db::Fault;

    #[test]
    fn every_database_fault_is_a_retryable_unavailable() {
        for fault in [
            Fault::Unreachable,
            Fault::PoolTimedOut,
            Fault::Overloaded,
            Fault::Contention,
        ] {
            let status = Status::from(Error::from(StoreError::Unavailable(
                fault,
                "terminating connection due to administrator command".into(),
            )));
            assert_eq!(status.code(), Code::Unavailable, "{fault:?}");
            assert!(
                status.get_details_retry_info().is_some(),
                "{fault:?}: {status:?}"
            );
            assert!(!status.message().contains("administrator"), "{status:?}");
        }
        let statement = Status::from(Error::from(StoreError::Other("syntax error".into())));
        assert_eq!(statement.code(), Code::Internal);
    }
}
