//! The short-lived token this service signs for itself to call the user
//! service (the `service` role), minted once and reused until near its end.

use crate::error::Error;
use suite_tokens::{Claims, SigningKey};
use tokio::sync::Mutex;

/// How long a service token lives, and how close to its end it is replaced.
const SERVICE_TOKEN_TTL_SECS: i64 = 300;
const SERVICE_TOKEN_RENEW_BEFORE_SECS: i64 = 60;
/// The `sub` of this service's tokens.
pub const SERVICE_SUBJECT: &str = "suite-auth";

/// Mints and caches the service token.
pub struct ServiceTokens {
    key: SigningKey,
    issuer: String,
    audience: String,
    cached: Mutex<Option<(String, i64)>>,
}

impl ServiceTokens {
    pub fn new(key: SigningKey, issuer: String, audience: String) -> Self {
        Self {
            key,
            issuer,
            audience,
            cached: Mutex::new(None),
        }
    }

    pub async fn token(&self) -> Result<String, Error> {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let mut cached = self.cached.lock().await;
        if let Some((token, exp)) = cached.as_ref()
            && exp - now > SERVICE_TOKEN_RENEW_BEFORE_SECS
        {
            return Ok(token.clone());
        }
        let claims = Claims::service(
            &self.issuer,
            &self.audience,
            SERVICE_SUBJECT,
            now,
            SERVICE_TOKEN_TTL_SECS,
        );
        let token = self
            .key
            .sign(&claims)
            .map_err(|e| Error::Internal(e.to_string()))?;
        *cached = Some((token.clone(), claims.exp));
        Ok(token)
    }
}
