//! The claims of our access tokens, the roles they carry, and why a token
//! is refused.

use serde::{Deserialize, Serialize};

/// The JOSE `typ` of our access tokens (RFC 9068), so that no other kind of
/// JWT signed with the same keys can be replayed as an access token.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Role names carried in the `roles` claim.
pub mod roles {
    pub const USER: &str = "user";
    pub const ADMIN: &str = "admin";
    /// Internal callers (e.g. the auth service calling the user service).
    pub const SERVICE: &str = "service";
    /// The `sub` of the service tokens suitectl mints with the operator's
    /// signing key: the one service the user service lets act as an admin.
    pub const OPERATOR_SUBJECT: &str = "suitectl";
}

/// The `aud` claim: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: Audience,
    /// The user id, or a service's name for service tokens.
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// The session (refresh-token family) the token was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// The OAuth client the token was issued to (RFC 9068); absent on the
    /// suite's own first-party tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The scopes granted, space-separated (RFC 9068). Absent on first-party
    /// tokens, which keep their full meaning; present, the token allows only
    /// what these scopes allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// How the user proved who they are (RFC 8176): `pwd`, and with a
    /// second factor `otp` (or `rc`, a recovery code) and `mfa`. Empty on
    /// service and client tokens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// When the user signed in (Unix seconds): the step-up rules compare it
    /// with now. Absent on service and client tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The token stands for a personal access token (exchanged for it):
    /// its `sid` is that token's id, its `scope` that token's scopes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pat: bool,
}

impl Claims {
    /// A service token's claims: `subject` acting with the `service` role
    /// toward `audience`, from `now` (Unix seconds) for `ttl_secs`, with a
    /// fresh `jti`. The auth service's own calls and suitectl's mint these.
    pub fn service(issuer: &str, audience: &str, subject: &str, now: i64, ttl_secs: i64) -> Self {
        Self {
            iss: issuer.to_owned(),
            aud: Audience::One(audience.to_owned()),
            sub: subject.to_owned(),
            exp: now + ttl_secs,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            sid: None,
            roles: vec![roles::SERVICE.into()],
            client_id: None,
            scope: None,
            amr: Vec::new(),
            auth_time: None,
            pat: false,
        }
    }
}

/// Why a token was refused. Clients learn only "expired" or "invalid".
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("access token expired")]
    Expired,
    #[error("invalid access token: {0}")]
    Invalid(&'static str),
    #[error("invalid access token: {0}")]
    Rejected(#[source] jsonwebtoken::errors::Error),
    /// Its session was revoked, or its user deleted or changed, after it
    /// was issued.
    #[error("access token revoked")]
    Revoked,
    /// A personal access token could not be checked: the auth service did
    /// not answer. Not the token's fault: a 503, not a 401.
    #[error("cannot check the personal access token now: {0}")]
    Unavailable(String),
}
