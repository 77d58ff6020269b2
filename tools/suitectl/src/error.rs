//! suitectl's one error type, and the exit code each kind of failure gives
//! (documented in the README, for scripts).

use tonic::Code;
use tonic_types::StatusExt;

/// Exit codes: 0 is success; clap exits 2 on a usage error itself.
pub mod exit {
    /// An operation failed (not found, refused input, a partial import).
    pub const FAILED: u8 = 1;
    /// The command line is wrong.
    pub const USAGE: u8 = 2;
    /// A service cannot be reached, or refuses the credentials.
    pub const UNREACHABLE: u8 = 3;
}

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}")]
    Usage(String),
    /// No connection, or the credentials are refused.
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Failed(String),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => exit::USAGE,
            Self::Unreachable(_) => exit::UNREACHABLE,
            Self::Failed(_) => exit::FAILED,
        }
    }

    /// A failed call to `what`: the code, the message and every field the
    /// service named.
    pub fn from_status(what: &str, status: &tonic::Status) -> Self {
        let text = format!("{what}: {}", describe(status));
        match status.code() {
            Code::Unavailable | Code::DeadlineExceeded => {
                Self::Unreachable(format!("{text} (is the service running at the given URL?)"))
            }
            Code::Unauthenticated | Code::PermissionDenied => Self::Unreachable(text),
            _ => Self::Failed(text),
        }
    }
}

/// `Code: message (field: description; …)`.
pub fn describe(status: &tonic::Status) -> String {
    let mut text = format!("{:?}: {}", status.code(), status.message());
    if let Some(bad) = status.get_details_bad_request() {
        let fields: Vec<String> = bad
            .field_violations
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect();
        if !fields.is_empty() {
            text.push_str(&format!(" ({})", fields.join("; ")));
        }
    }
    text
}
