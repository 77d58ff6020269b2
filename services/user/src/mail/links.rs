//! The single-use tokens of mailed links: random secrets shown once (in the
//! link), stored as their SHA-256, each for one purpose, one user and one
//! state of the account that must still hold when it is redeemed.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a link token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proves the user's current address (`bound`: that address).
    VerifyEmail,
    /// Proves a new address the user asked for (`email`: the new address;
    /// `bound`: the address it replaces).
    ChangeEmail,
    /// Undoes a confirmed change from the old address (`email`: the old
    /// address; `bound`: the address that replaced it).
    RevertEmail,
    /// Sets a new password (`bound`: a digest of the password it replaces).
    ResetPassword,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ChangeEmail => "change_email",
            Self::RevertEmail => "revert_email",
            Self::ResetPassword => "reset_password",
        }
    }

    pub fn parse(stored: &str) -> Option<Self> {
        [
            Self::VerifyEmail,
            Self::ChangeEmail,
            Self::RevertEmail,
            Self::ResetPassword,
        ]
        .into_iter()
        .find(|p| p.as_str() == stored)
    }
}

/// A token about to be stored: its secret goes into a link, once.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub hash: Vec<u8>,
    pub purpose: Purpose,
    pub user_id: Uuid,
    pub email: String,
    pub bound: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub purpose: Purpose,
    pub user_id: Uuid,
    pub email: String,
    pub bound: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// Bytes of randomness in a secret: 256 bits, beyond guessing.
const SECRET_BYTES: usize = 32;
/// The length of a secret in the links (unpadded base64url of 32 bytes).
pub const SECRET_CHARS: usize = 43;

/// A fresh secret and the token row that stores its hash.
pub fn issue(
    purpose: Purpose,
    user_id: Uuid,
    email: &str,
    bound: String,
    now: DateTime<Utc>,
    lifetime: std::time::Duration,
) -> (String, NewToken) {
    let mut raw = [0u8; SECRET_BYTES];
    crate::password::fill_random(&mut raw);
    let secret = URL_SAFE_NO_PAD.encode(raw);
    let expires_at = now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX);
    let token = NewToken {
        hash: hash(&secret),
        purpose,
        user_id,
        email: email.to_owned(),
        bound,
        created_at: now,
        expires_at,
    };
    (secret, token)
}

/// The stored form of `secret`, if it has the form of one (anything else is
/// refused without a look-up).
pub fn parse(secret: &str) -> Option<Vec<u8>> {
    let secret = secret.trim();
    let well_formed = secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    well_formed.then(|| hash(secret))
}

fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// What a reset token is bound to: the password hash it would replace
/// (digested: the hash itself never leaves the users table). Any other
/// change of the password kills the link.
pub fn password_binding(password_hash: &str) -> String {
    let digest = Sha256::digest(password_hash.as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_back_to_their_hash_and_nothing_else_does() {
        let (secret, token) = issue(
            Purpose::ResetPassword,
            Uuid::nil(),
            "a@example.com",
            "b".into(),
            Utc::now(),
            std::time::Duration::from_secs(60),
        );
        assert_eq!(secret.len(), SECRET_CHARS);
        assert_eq!(parse(&secret), Some(token.hash.clone()));
        let mut tampered = secret.clone();
        tampered.replace_range(0..1, if secret.starts_with('A') { "B" } else { "A" });
        assert_ne!(parse(&tampered), Some(token.hash));
        assert_eq!(parse("short"), None);
        assert_eq!(parse(&format!("{}\r\n", &secret[..42])), None);
        assert_eq!(parse(&"é".repeat(43)), None);
    }

    #[test]
    fn purposes_round_trip() {
        for p in [
            Purpose::VerifyEmail,
            Purpose::ChangeEmail,
            Purpose::RevertEmail,
            Purpose::ResetPassword,
        ] {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(Purpose::parse("other"), None);
    }
}
