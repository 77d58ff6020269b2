//! Authenticating gRPC callers: the bearer token of every call is verified
//! here, by the service itself, against the trusted public keys.

use crate::{
    jwks::KeyCache,
    jwt::{self, Claims, TokenError, TokenRules, roles},
};
use tonic::{Status, metadata::MetadataMap};

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
}

impl Authenticator {
    pub fn new(keys: KeyCache, rules: TokenRules) -> Self {
        Self {
            keys,
            validation: rules.validation(),
        }
    }

    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// Verifies one token.
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jwt::inspect_header(token)?;
        let keys = self.keys.keys_for(&header.kid).await;
        let key = keys
            .get(&header.kid)
            .ok_or(TokenError::Invalid("unknown key id"))?;
        jwt::verify_with(token, key, &self.validation)
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
