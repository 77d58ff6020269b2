//! Authenticating gRPC callers: the bearer token of every call is verified
//! here, by the service itself, against the trusted public keys.

use crate::{
    jwks::KeyCache,
    jwt::{self, Claims, TokenError, TokenRules, roles},
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tonic::{Status, metadata::MetadataMap};

/// How many verified tokens are remembered; past that the memory starts over.
const VERIFIED_CACHE_SIZE: usize = 4096;

/// Who is calling, as the verified token says.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user id, or a service's name.
    pub subject: String,
    pub roles: Vec<String>,
    pub session_id: Option<String>,
}

impl Caller {
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub fn is_admin(&self) -> bool {
        self.has_role(roles::ADMIN)
    }

    pub fn is_service(&self) -> bool {
        self.has_role(roles::SERVICE)
    }
}

impl From<Claims> for Caller {
    fn from(c: Claims) -> Self {
        Self {
            subject: c.sub,
            roles: c.roles,
            session_id: c.sid,
        }
    }
}

/// Verifies bearer tokens against a key cache and fixed rules.
#[derive(Clone)]
pub struct Authenticator {
    keys: KeyCache,
    /// Built once from the rules: verification runs on every call.
    validation: jsonwebtoken::Validation,
    /// Tokens already verified, so a client's repeated token costs a lookup,
    /// not a signature check (as Envoy's jwt_authn cache does).
    verified: Arc<Mutex<HashMap<Box<str>, Verified>>>,
}

/// A token that passed, and against which key set: when the keys change
/// (rotation, removal), every remembered token is checked again.
struct Verified {
    claims: Claims,
    keys: Arc<crate::jwt::KeySet>,
}

impl Authenticator {
    pub fn new(keys: KeyCache, rules: TokenRules) -> Self {
        Self {
            keys,
            validation: rules.validation(),
            verified: Arc::default(),
        }
    }

    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// Verifies one token.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let current = self.keys.keys().await;
        if let Some(claims) = self.remembered(token, &current) {
            return Ok(claims);
        }
        let header = jwt::inspect_header(token)?;
        let keys = self.keys.keys_for(&header.kid).await;
        let key = keys
            .get(&header.kid)
            .ok_or(TokenError::Invalid("unknown key id"))?;
        let claims = jwt::verify_with(token, key, &self.validation)?;
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CACHE_SIZE {
                verified.clear();
            }
            verified.insert(
                token.into(),
                Verified {
                    claims: claims.clone(),
                    keys,
                },
            );
        }
        Ok(claims)
    }

    /// The claims of a token verified before, against the current keys and
    /// not yet expired (no leeway: a remembered token never outlives `exp`).
    fn remembered(&self, token: &str, current: &Arc<crate::jwt::KeySet>) -> Option<Claims> {
        let mut verified = self.verified.lock().ok()?;
        let entry = verified.get(token)?;
        let now = jsonwebtoken::get_current_timestamp();
        if Arc::ptr_eq(&entry.keys, current)
            && u64::try_from(entry.claims.exp).is_ok_and(|exp| now < exp)
        {
            return Some(entry.claims.clone());
        }
        verified.remove(token);
        None
    }

    /// The caller of a request: `None` without an `authorization` entry, an
    /// Unauthenticated status if one is there but not a valid bearer token.
    pub async fn caller(&self, metadata: &MetadataMap) -> Result<Option<Caller>, Status> {
        let Some(value) = metadata.get("authorization") else {
            return Ok(None);
        };
        let token = value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            Status::unauthenticated("authorization must be `Bearer <access token>`")
        })?;
        match self.verify(token).await {
            Ok(claims) => Ok(Some(claims.into())),
            Err(e) => {
                tracing::debug!(error = %e, "token refused");
                Err(token_status(&e))
            }
        }
    }

    /// Like [`Self::caller`], but a missing token is Unauthenticated too.
    pub async fn require_caller(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        self.caller(metadata)
            .await?
            .ok_or_else(|| Status::unauthenticated("this call needs a bearer access token"))
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The one mapping of token errors to the wire: expired or invalid, no more.
fn token_status(e: &TokenError) -> Status {
    match e {
        TokenError::Expired => Status::unauthenticated("access token expired"),
        TokenError::Invalid(_) | TokenError::Rejected(_) => {
            Status::unauthenticated("invalid access token")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }
}
