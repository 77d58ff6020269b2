//! A login name and a password as both services read them, parsed once at
//! the gRPC edge: the auth service's Login, the user service's
//! VerifyCredentials and LookupUser, and the throttle's counters all see the
//! same [`Login`], so they cannot disagree about who "Alice " is.

use secrecy::{ExposeSecret, SecretString};
use std::fmt;

/// The longest login name looked at (the longest valid email address):
/// longer ones are refused before anything is stored or hashed.
pub const MAX_LOGIN_CHARS: usize = 254;

/// A username or an email address in its normal form: trimmed and
/// lower-cased (usernames and emails are stored so), at most
/// [`MAX_LOGIN_CHARS`] characters.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Login(String);

/// Why a login name was refused (the message names no field: the caller does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    #[error("is required")]
    Missing,
    #[error("must be at most {MAX_LOGIN_CHARS} characters long")]
    TooLong,
}

impl Login {
    /// The login `raw` names. Its length is counted before lower-casing,
    /// on the trimmed text the client sent.
    pub fn parse(raw: &str) -> Result<Self, LoginError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(LoginError::Missing);
        }
        // Counting stops early, so a megabyte-long value costs nothing more.
        if trimmed.chars().take(MAX_LOGIN_CHARS + 1).count() > MAX_LOGIN_CHARS {
            return Err(LoginError::TooLong);
        }
        Ok(Self(canonical_login(trimmed)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Login").field(&self.0).finish()
    }
}

/// The normal form of a login name, a username or an email: trimmed and
/// lower-cased, as they are stored. [`Login::parse`] applies it; suitectl's
/// import finds duplicates in a file by it, as the service will.
pub fn canonical_login(raw: &str) -> String {
    raw.trim().to_lowercase()
}

/// A password as given (not empty; otherwise unchecked: what makes a new
/// password acceptable is the user service's rule). It is never shown:
/// `Debug` prints nothing of it, and the text is read only where it is
/// hashed, verified or sent on.
#[derive(Clone)]
pub struct Password(SecretString);

/// A password field left empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is required")]
pub struct PasswordMissing;

impl Password {
    pub fn parse(raw: String) -> Result<Self, PasswordMissing> {
        if raw.is_empty() {
            return Err(PasswordMissing);
        }
        Ok(Self(SecretString::from(raw)))
    }

    /// The password itself, for the hasher and the wire.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// The login and password of a credential check (the auth service's Login,
/// the user service's VerifyCredentials), or every bad field of the two as
/// (field, what is wrong).
pub fn parse_credentials(
    login: &str,
    password: String,
) -> Result<(Login, Password), Vec<(&'static str, String)>> {
    match (Login::parse(login), Password::parse(password)) {
        (Ok(login), Ok(password)) => Ok((login, password)),
        (login, password) => Err([
            login.err().map(|e| ("login", e.to_string())),
            password.err().map(|e| ("password", e.to_string())),
        ]
        .into_iter()
        .flatten()
        .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_is_trimmed_and_lower_cased() {
        assert_eq!(
            Login::parse(" Alice@Example.COM\t").map(|l| l.0),
            Ok("alice@example.com".to_owned())
        );
    }

    #[test]
    fn a_login_is_required_and_bounded_in_characters() {
        assert_eq!(Login::parse(" \t"), Err(LoginError::Missing));
        assert!(Login::parse(&"é".repeat(MAX_LOGIN_CHARS)).is_ok());
        assert_eq!(
            Login::parse(&"x".repeat(MAX_LOGIN_CHARS + 1)),
            Err(LoginError::TooLong)
        );
        assert_eq!(Login::parse(&"x".repeat(1 << 20)), Err(LoginError::TooLong));
    }

    #[test]
    fn credentials_name_every_bad_field() {
        let bad = parse_credentials(" ", String::new()).err();
        assert_eq!(
            bad,
            Some(vec![
                ("login", "is required".to_owned()),
                ("password", "is required".to_owned())
            ])
        );
        assert!(parse_credentials("alice", "pw".into()).is_ok());
    }

    #[test]
    fn a_password_is_required_and_never_shown() {
        assert_eq!(Password::parse(String::new()).err(), Some(PasswordMissing));
        let p = Password::parse("correct horse".into()).expect("given");
        assert_eq!(p.expose(), "correct horse");
        assert!(!format!("{p:?}").contains("horse"));
    }
}
