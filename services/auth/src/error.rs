//! The auth service's one error type (no transport inside), and its one
//! mapping to `tonic::Status`, which the gRPC adapter applies.

use crate::store::StoreError;
use std::time::Duration;
use tonic::Status;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: (field, what is wrong) for each bad field.
    #[error("invalid argument")]
    InvalidArgument(Vec<(&'static str, String)>),
    /// Bad credentials: a wrong login or password, a dead refresh token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The call is right but the account's state does not allow it now.
    #[error("{0}")]
    FailedPrecondition(&'static str),
    /// The caller's bearer token was refused (why, in words for the caller).
    #[error("{0}")]
    TokenRefused(String),
    #[error("{0}")]
    PermissionDenied(&'static str),
    #[error("{0}")]
    NotFound(&'static str),
    /// Too many failed logins (the user service's throttle); try again after the delay.
    #[error("too many failed logins")]
    Throttled(Duration),
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn invalid(field: &'static str, description: impl Into<String>) -> Self {
        Self::InvalidArgument(vec![(field, description.into())])
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_, m) => Self::Unavailable(m),
            StoreError::Other(m) => Self::Internal(m),
        }
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidArgument(violations) => suite_grpc::status::invalid_argument(violations),
            Error::Unauthenticated(m) => Status::unauthenticated(m),
            Error::FailedPrecondition(m) => Status::failed_precondition(m),
            Error::TokenRefused(m) => Status::unauthenticated(m),
            Error::PermissionDenied(m) => Status::permission_denied(m),
            Error::NotFound(m) => Status::not_found(m),
            Error::Throttled(wait) => suite_grpc::status::throttled(wait),
            // The detail (driver message, address) is for the log, not the client.
            Error::Unavailable(_) => suite_grpc::status::unavailable(
                "the service is temporarily unavailable; try again shortly",
            ),
            // The detail is logged once, by `suite_grpc::server::reply`.
            Error::Internal(_) => Status::internal("internal error"),
        }
    }
}

impl From<suite_grpc::paging::PagingError> for Error {
    fn from(e: suite_grpc::paging::PagingError) -> Self {
        Self::invalid(e.field, e.description)
    }
}

/// Why the service could not start (or migrate): each names what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("invalid DATABASE_URL: {0}")]
    Store(String),
    #[error("signing keys: {0}")]
    Keys(String),
    /// Its message already says "event bus".
    #[error(transparent)]
    Events(#[from] suite_events::Error),
    #[error("back-channel logout: {0}")]
    Logouts(String),
    #[error(transparent)]
    Serve(#[from] suite_grpc::server::ServeError),
}
