//! The transport-neutral verifier: a bearer token in, a typed [`Caller`] or
//! a [`TokenError`] out, against the trusted public keys and fixed rules.
//! The gRPC adapter is [`crate::grpc`]; the gateway maps errors to HTTP.

use crate::{
    claims::{Claims, TokenError, roles},
    jwks::KeyCache,
    keys::KeySet,
    revocations::{self, Revocations},
    rules::{self, TokenRules},
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use uuid::Uuid;

/// How many verified tokens are remembered; past that the memory starts over.
const VERIFIED_CACHE_SIZE: usize = 4096;

/// Who is calling, as a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    User(UserCaller),
    /// An internal caller (a token with the `service` role), by its name.
    Service {
        name: String,
    },
    /// An OAuth client acting for itself (client credentials): its subject
    /// is its client id, and it holds only its granted scopes.
    Client {
        client_id: String,
        scopes: Vec<String>,
    },
}

/// A user's access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserCaller {
    pub id: Uuid,
    pub roles: Vec<String>,
    /// The session (refresh-token family) the token was issued for.
    pub session: Option<Uuid>,
    /// The OAuth client the token was issued to, and the scopes it was
    /// granted; `None` for the suite's own first-party tokens, which allow
    /// whatever the user's roles allow.
    pub delegated: Option<Delegation>,
}

/// The scope an OAuth token of an admin needs to act as one.
pub const ADMIN_SCOPE: &str = "admin";

/// What an OAuth client was allowed to do for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delegation {
    pub client_id: String,
    pub scopes: Vec<String>,
}

/// The scopes of a `scope` claim (space-separated, RFC 6749 section 3.3).
pub fn scope_list(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Caller {
    /// The claims of a verified token, typed: a service's token, or a
    /// user's whose subject and session are UUIDs.
    pub fn from_claims(claims: &Claims) -> Result<Self, TokenError> {
        Self::typed(claims).map_err(TokenError::Invalid)
    }

    fn typed(claims: &Claims) -> Result<Self, &'static str> {
        if claims.roles.iter().any(|r| r == roles::SERVICE) {
            if claims.client_id.is_some() || claims.scope.is_some() {
                return Err("a service token names no client");
            }
            return Ok(Self::Service {
                name: claims.sub.clone(),
            });
        }
        if let Some(client_id) = claims.client_id.as_deref()
            && client_id == claims.sub
        {
            if !claims.roles.is_empty() || claims.sid.is_some() {
                return Err("a client's own token carries no roles or session");
            }
            return Ok(Self::Client {
                client_id: client_id.to_owned(),
                scopes: scope_list(claims.scope.as_deref().unwrap_or_default()),
            });
        }
        let delegated = match (&claims.client_id, &claims.scope) {
            (None, None) => None,
            (Some(client_id), Some(scope)) => Some(Delegation {
                client_id: client_id.clone(),
                scopes: scope_list(scope),
            }),
            _ => return Err("client_id and scope come together"),
        };
        let id = Uuid::parse_str(&claims.sub).map_err(|_| "the subject is not a user id")?;
        let session = claims
            .sid
            .as_deref()
            .map(Uuid::parse_str)
            .transpose()
            .map_err(|_| "the session is not a session id")?;
        Ok(Self::User(UserCaller {
            id,
            roles: claims.roles.clone(),
            session,
            delegated,
        }))
    }

    /// Whether the token allows what `scope` names: always for first-party
    /// user tokens and services; for OAuth tokens, only a granted scope.
    pub fn has_scope(&self, scope: &str) -> bool {
        match self {
            Self::User(UserCaller {
                delegated: None, ..
            })
            | Self::Service { .. } => true,
            Self::User(UserCaller {
                delegated: Some(d), ..
            }) => d.scopes.iter().any(|s| s == scope),
            Self::Client { scopes, .. } => scopes.iter().any(|s| s == scope),
        }
    }

    /// The user's id; `None` for a service.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User(u) => Some(u.id),
            Self::Service { .. } | Self::Client { .. } => None,
        }
    }

    /// The session of a user's token.
    pub fn session(&self) -> Option<Uuid> {
        match self {
            Self::User(u) => u.session,
            Self::Service { .. } | Self::Client { .. } => None,
        }
    }

    /// A user with the admin role, whose token allows acting as one: a
    /// first-party token, or an OAuth token granted the `admin` scope.
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::User(u) if u.roles.iter().any(|r| r == roles::ADMIN))
            && self.has_scope(ADMIN_SCOPE)
    }

    pub fn is_service(&self) -> bool {
        matches!(self, Self::Service { .. })
    }

    /// An admin, or the operator's suitectl (a service token it minted with
    /// the signing key, which could sign an admin's as well): whoever may act
    /// on every user. Other services' tokens are not: a leaked one of theirs
    /// changes nobody.
    pub fn is_operator(&self) -> bool {
        self.is_admin() || matches!(self, Self::Service { name } if name == roles::OPERATOR_SUBJECT)
    }
}

/// Verifies bearer tokens against a key cache and fixed rules.
#[derive(Clone)]
pub struct Verifier {
    keys: KeyCache,
    /// Built once from the rules: verification runs on every call.
    validation: jsonwebtoken::Validation,
    /// Tokens already verified, so a client's repeated token costs a lookup,
    /// not a signature check (as Envoy's jwt_authn cache does).
    verified: Arc<Mutex<HashMap<Box<str>, Verified>>>,
    /// Sessions and users revoked recently; `None`: nothing is revoked
    /// before `exp` (a verifier fed no events).
    revocations: Option<Revocations>,
}

/// A token whose signature and claims passed, and the caller it names (or
/// why it names none).
struct Checked {
    claims: Claims,
    caller: Result<Caller, &'static str>,
    /// When it was issued, to the millisecond, for the revocations.
    issued: revocations::Millis,
}

/// A token that passed, and against which key set: when the keys change
/// (rotation, removal), every remembered token is checked again.
struct Verified {
    checked: Arc<Checked>,
    keys: Arc<KeySet>,
}

impl Verifier {
    pub fn new(keys: KeyCache, rules: TokenRules) -> Self {
        Self {
            keys,
            validation: rules.validation(),
            verified: Arc::default(),
            revocations: None,
        }
    }

    /// The verifier, refusing also what `revocations` holds.
    pub fn with_revocations(mut self, revocations: Revocations) -> Self {
        self.revocations = Some(revocations);
        self
    }

    pub fn revocations(&self) -> Option<&Revocations> {
        self.revocations.as_ref()
    }

    pub fn keys(&self) -> &KeyCache {
        &self.keys
    }

    /// The caller a token names.
    pub async fn caller(&self, token: &str) -> Result<Caller, TokenError> {
        self.caller_until(token).await.map(|(caller, _)| caller)
    }

    /// The caller a token names, and its `exp`.
    pub async fn caller_until(&self, token: &str) -> Result<(Caller, i64), TokenError> {
        self.lasting(token)
            .await
            .map(|lasting| (lasting.caller, lasting.exp))
    }

    /// The caller a token names, for a call that lasts (a stream): it must
    /// end when the token does, at `exp` or at its revocation.
    pub async fn lasting(&self, token: &str) -> Result<Lasting, TokenError> {
        let checked = self.check(token).await?;
        let caller = checked.caller.clone().map_err(TokenError::Invalid)?;
        self.refuse_revoked(&caller, checked.issued)?;
        Ok(Lasting {
            caller,
            exp: checked.claims.exp,
            issued: checked.issued,
            revocations: self.revocations.clone(),
        })
    }

    /// The claims of a token, as signed (whoever they name).
    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let checked = self.check(token).await?;
        if let Ok(caller) = &checked.caller {
            self.refuse_revoked(caller, checked.issued)?;
        }
        Ok(checked.claims.clone())
    }

    /// A user's token issued before a revocation that concerns it is refused.
    fn refuse_revoked(
        &self,
        caller: &Caller,
        issued: revocations::Millis,
    ) -> Result<(), TokenError> {
        match (&self.revocations, caller) {
            (Some(r), Caller::User(u)) if r.refuses(u.id, u.session, issued) => {
                Err(TokenError::Revoked)
            }
            _ => Ok(()),
        }
    }

    /// The token's checked form, shared with the cache: a remembered token
    /// costs a lookup and a reference count, and each caller clones only
    /// the part it asks for.
    async fn check(&self, token: &str) -> Result<Arc<Checked>, TokenError> {
        let current = self.keys.keys().await;
        if let Some(found) = self.remembered(token, &current) {
            return Ok(found);
        }
        let header = rules::inspect_header(token)?;
        let keys = self.keys.keys_for(&header.kid).await;
        let key = keys
            .get(&header.kid)
            .ok_or(TokenError::Invalid("unknown key id"))?;
        let claims = rules::verify_with(token, key, &self.validation)?;
        let checked = Arc::new(Checked {
            caller: Caller::typed(&claims),
            issued: revocations::issued_millis(&claims.jti, claims.iat),
            claims,
        });
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= VERIFIED_CACHE_SIZE {
                verified.clear();
            }
            verified.insert(
                token.into(),
                Verified {
                    checked: checked.clone(),
                    keys,
                },
            );
        }
        Ok(checked)
    }

    /// A token verified before, against the current keys and not yet
    /// expired (no leeway: a remembered token never outlives `exp`).
    fn remembered(&self, token: &str, current: &Arc<KeySet>) -> Option<Arc<Checked>> {
        let mut verified = self.verified.lock().ok()?;
        let entry = verified.get(token)?;
        let now = jsonwebtoken::get_current_timestamp();
        if Arc::ptr_eq(&entry.keys, current)
            && u64::try_from(entry.checked.claims.exp).is_ok_and(|exp| now < exp)
        {
            return Some(entry.checked.clone());
        }
        verified.remove(token);
        None
    }
}

/// A verified token held by a call that lasts: who it names, and what ends
/// it.
#[derive(Debug, Clone)]
pub struct Lasting {
    pub caller: Caller,
    /// Unix seconds.
    pub exp: i64,
    issued: revocations::Millis,
    revocations: Option<Revocations>,
}

impl Lasting {
    /// Completes when the token may no longer be used, with why: its `exp`
    /// passes ([`TokenError::Expired`]), or a revocation refuses it
    /// ([`TokenError::Revoked`]: a logout, a password or roles change, a
    /// deletion).
    pub async fn ended(&self) -> TokenError {
        let expired = tokio::time::sleep_until(self.expires_at());
        let revoked = async {
            match (&self.revocations, &self.caller) {
                (Some(set), Caller::User(u)) => set.refused(u.id, u.session, self.issued).await,
                // A service's token is revoked by no event.
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            () = expired => TokenError::Expired,
            () = revoked => TokenError::Revoked,
        }
    }

    /// The instant of `exp` on this process's clock.
    pub fn expires_at(&self) -> tokio::time::Instant {
        let left =
            u64::try_from(self.exp.saturating_sub(revocations::now_millis() / 1000)).unwrap_or(0);
        let now = tokio::time::Instant::now();
        now.checked_add(std::time::Duration::from_secs(left))
            // Too far to represent: as good as never.
            .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 86_400))
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme
/// case-insensitive); `None` if the value is not a bearer token.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::Audience;

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    fn claims(sub: &str, roles: &[&str], sid: Option<&str>) -> Claims {
        Claims {
            iss: "i".into(),
            aud: Audience::One("a".into()),
            sub: sub.into(),
            exp: 0,
            iat: 0,
            nbf: 0,
            jti: "j".into(),
            sid: sid.map(str::to_owned),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            client_id: None,
            scope: None,
        }
    }

    #[test]
    fn callers_are_typed_from_their_claims() {
        let id = Uuid::now_v7();
        let sid = Uuid::now_v7();
        let user = Caller::from_claims(&claims(
            &id.to_string(),
            &["user", "admin"],
            Some(&sid.to_string()),
        ));
        assert!(
            matches!(&user, Ok(c) if c.user_id() == Some(id) && c.session() == Some(sid) && c.is_admin())
        );
        let service = Caller::from_claims(&claims("suite-auth", &["service"], None));
        assert!(
            matches!(&service, Ok(c) if c.is_service() && c.user_id().is_none() && !c.is_admin())
        );
        assert!(Caller::from_claims(&claims("not-a-uuid", &["user"], None)).is_err());
        assert!(Caller::from_claims(&claims(&id.to_string(), &["user"], Some("x"))).is_err());
    }
}
