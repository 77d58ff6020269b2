//! The OpenID Connect provider (issue 28): clients, the authorization-code
//! flow with PKCE behind the gateway's pages, the token endpoint's grants,
//! introspection, revocation, UserInfo and RP-initiated logout. Rules in
//! domain types here; the gRPC adapter is `grpc`.

pub mod account;
pub mod authorize;
pub mod backchannel;
pub mod clients;
pub mod device;
pub mod grpc;
pub mod introspect;
pub mod sql;
pub mod store;
pub mod token;
mod traced;

use crate::{core::AuthCore, error::Error, store::StoreError};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use store::OAuthStore;
use subtle::ConstantTimeEq;
use suite_db::Database;

/// The OIDC scopes, then the API scopes, as the discovery document lists them.
pub const SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "offline_access",
    "user:read",
    "user:write",
    suite_tokens::ADMIN_SCOPE,
];

/// The grant types a client may be registered for.
pub const GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "urn:ietf:params:oauth:grant-type:device_code",
];

/// What a scope allows, in words for the consent page.
pub fn describe_scope(scope: &str) -> &'static str {
    match scope {
        "openid" => "Sign you in with your account",
        "profile" => "See your name and username",
        "email" => "See your email address",
        "offline_access" => "Stay signed in when you are not using it",
        "user:read" => "Read your profile, sessions and events",
        "user:write" => "Change your profile and password, end your sessions, delete your account",
        "admin" => "Act as an administrator (only if you are one)",
        _ => "An access not described",
    }
}

/// An OAuth 2.0 error answer (RFC 6749 section 5.2, or the authorization
/// endpoint's redirect parameters): not a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthFail {
    pub error: &'static str,
    pub description: String,
}

impl OAuthFail {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }
}

/// What the provider's calls answer: a result, an OAuth refusal, or (the
/// outer error) a failed call.
pub type Answer<T> = Result<Result<T, OAuthFail>, Error>;

/// 32 random bytes, base64url (43 characters): codes, secrets, cookies, ids.
pub fn random_token() -> Result<String, Error> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

/// SHA-256, base64url: the stored form of high-entropy secrets (a fast hash
/// suffices where there is nothing to brute-force).
pub fn hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Equality in time independent of where the strings differ.
pub fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The provider's store on `db`.
pub fn open_store(db: &Database) -> Arc<dyn OAuthStore> {
    Arc::new(db.store::<dyn OAuthStore>(
        |pool| Arc::new(sql::postgres::PgOAuthStore { pool }),
        |pool| Arc::new(sql::sqlite::SqliteOAuthStore { pool }),
    ))
}

/// The provider: its store, and the auth core for sessions, users and keys.
pub struct OAuthCore {
    store: Arc<dyn OAuthStore>,
    auth: Arc<AuthCore>,
    /// Every public key, and the access-token keys with their rules, worked
    /// out once: introspection and UserInfo check tokens on every call.
    jwks: jsonwebtoken::jwk::JwkSet,
    access_keys: suite_tokens::KeySet,
    access_rules: jsonwebtoken::Validation,
}

impl OAuthCore {
    pub fn new(store: Arc<dyn OAuthStore>, auth: Arc<AuthCore>) -> Result<Self, Error> {
        let jwks = auth
            .keys()
            .jwks()
            .map_err(|e| Error::Internal(e.to_string()))?;
        let settings = auth.settings();
        let access_rules = suite_tokens::TokenRules {
            issuer: settings.issuer.clone(),
            audiences: vec![settings.audience.clone()],
            leeway_secs: 0,
            admins_need_second_factor: false,
        }
        .validation();
        Ok(Self {
            store,
            access_keys: suite_tokens::KeySet::from_jwks(&jwks),
            jwks,
            access_rules,
            auth,
        })
    }

    /// Whether anonymous clients may register (OIDC_DYNAMIC_REGISTRATION).
    pub fn registration_enabled(&self) -> bool {
        self.auth.settings().dynamic_registration
    }

    /// The issuer (PUBLIC_URL without a trailing slash).
    pub fn oidc_issuer(&self) -> &str {
        &self.auth.settings().public_url
    }

    /// What the provider keeps of a user, after the user service's event: a
    /// deletion, password or roles change ends the browser sessions signed
    /// in before `before`; a deletion forgets the consents too. Idempotent.
    pub async fn forget_user(
        &self,
        user_id: uuid::Uuid,
        before: chrono::DateTime<chrono::Utc>,
        reason: suite_proto::auth::RevocationReason,
    ) -> Result<u64, Error> {
        let deleted = reason == suite_proto::auth::RevocationReason::UserDeleted;
        Ok(self
            .store
            .forget_user(user_id, before, suite_proto::time::now(), deleted)
            .await?)
    }

    /// Deletes expired requests and codes and dead browser sessions.
    pub async fn prune(&self) -> Result<u64, Error> {
        let now = suite_proto::time::now();
        let idle = chrono::Duration::from_std(self.auth.settings().idle_timeout)
            .unwrap_or(chrono::Duration::MAX);
        Ok(self.store.prune(now, now - idle).await?)
    }
}

/// A database failure on the provider's store, as the service's error.
impl From<StoreError> for OAuthFail {
    fn from(_: StoreError) -> Self {
        Self::new("server_error", "try again later")
    }
}
