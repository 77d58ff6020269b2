//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when a
//! session of an OAuth client ends, for any reason, the client's
//! `backchannel_logout_uri` is POSTed a logout token naming the user (`sub`)
//! and the browser session (`sid`, as in the ID token).
//!
//! What is owed is the session's own state (revoked, of a client, not yet
//! told: see migration 0007), not a message in memory: every way a session
//! ends (logout, revocation, password change, deletion, refresh-token
//! reuse) leaves the debt behind in the row it revokes, a restart or a
//! client that is down loses nothing, and pruning keeps the row until the
//! debt is settled. Every replica runs a [`LogoutSender`]; a claim (a
//! compare-and-set on the attempt count) gives each attempt to one of
//! them. Delivery is at least once: a replica that dies after the POST and
//! before settling leaves the token to be sent again when its lease ends,
//! and the receiver recognises the repeat by `jti` (section 2.6 asks
//! receivers to).

use super::{OAuthCore, store::LogoutOwed};
use crate::{error::Error, metrics::metrics};
use serde::Serialize;
use std::{sync::Arc, time::Duration};
use suite_proto::time::now;
use tokio::task::JoinSet;
use uuid::Uuid;

/// The event that makes a JWT a logout token (section 2.4).
const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long a logout token is valid: it is used at once or never.
const LOGOUT_TOKEN_TTL_SECS: i64 = 120;
/// Logout tokens taken per round.
const BATCH: usize = 32;

/// How logout tokens are delivered.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// How often the store is asked for what is due.
    pub poll: Duration,
    /// How long one POST may take.
    pub timeout: Duration,
    /// The wait after the first failed attempt; it doubles after each.
    pub first_retry: Duration,
    /// The longest wait between attempts.
    pub max_retry: Duration,
    /// Attempts before a token is given up.
    pub attempts: u32,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(600),
            attempts: 20,
        }
    }
}

impl Delivery {
    /// The wait after failed attempt number `attempt` (1 for the first).
    fn backoff(&self, attempt: i32) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        self.first_retry
            .saturating_mul(1 << doublings)
            .min(self.max_retry)
    }

    /// An attempt is leased for its POST's timeout and a margin: a replica
    /// that died mid-attempt leaves the token due again after it.
    fn lease(&self) -> Duration {
        self.timeout.saturating_add(Duration::from_secs(5))
    }
}

/// The claims of a logout token (section 2.4): no `nonce`, an `events`
/// member, and `sid` so the client can end exactly that browser session.
#[derive(Debug, Serialize)]
struct LogoutClaims {
    iss: String,
    sub: String,
    aud: String,
    iat: i64,
    exp: i64,
    jti: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    events: serde_json::Value,
}

/// What became of one attempt, as the metric counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// The client answered 2xx.
    Delivered,
    /// The client is gone or has no back-channel URI: nothing to send.
    NoReceiver,
    /// Refused, unreachable or too slow: due again later.
    Retrying,
    /// The last attempt failed too.
    GivenUp,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::NoReceiver => "no_receiver",
            Self::Retrying => "retrying",
            Self::GivenUp => "given_up",
        }
    }
}

/// Sends the logout tokens owed, one loop per replica.
#[derive(Clone)]
pub struct LogoutSender {
    provider: Arc<OAuthCore>,
    http: reqwest::Client,
    delivery: Delivery,
}

impl LogoutSender {
    pub fn new(provider: Arc<OAuthCore>, delivery: Delivery) -> Result<Self, Error> {
        Ok(Self {
            http: http_client(delivery.timeout)?,
            provider,
            delivery,
        })
    }

    /// Delivers what is due, then waits for the next poll; forever, from
    /// the moment the migrations have made the sessions' columns.
    pub async fn run(self, mut migrated: suite_db::Migrated) {
        migrated.wait().await;
        loop {
            match self.round().await {
                // A full batch: more may be due at once.
                Ok(n) if n == BATCH => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "back-channel logout round failed; will retry")
                }
            }
            tokio::time::sleep(self.delivery.poll).await;
        }
    }

    /// One round: the tokens due, each claimed and attempted concurrently;
    /// how many were due.
    pub async fn round(&self) -> Result<usize, Error> {
        let store = &self.provider.store;
        let at = now();
        let due = store.logouts_due(at, BATCH as i64).await?;
        let lease = chrono::Duration::from_std(self.delivery.lease())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let mut attempts = JoinSet::new();
        for owed in &due {
            if !store.claim_logout(owed, at + lease).await? {
                continue;
            }
            let sender = self.clone();
            let owed = owed.clone();
            attempts.spawn(async move {
                let session = owed.session_id;
                if let Err(e) = sender.attempt(owed).await {
                    // The lease runs out and the next round tries again.
                    tracing::warn!(error = %e, %session, "back-channel logout attempt failed");
                }
            });
        }
        attempts.join_all().await;
        Ok(due.len())
    }

    /// One claimed attempt at `owed`, settled in the store.
    async fn attempt(&self, owed: LogoutOwed) -> Result<(), Error> {
        let store = &self.provider.store;
        let receiver = store
            .get_client(&owed.client_id)
            .await?
            .filter(|c| !c.settings.backchannel_logout_uri.is_empty());
        let outcome = match receiver {
            None => Outcome::NoReceiver,
            Some(client) => {
                let token = self
                    .logout_token(&owed, &client.settings.id_token_alg)
                    .await?;
                let uri = &client.settings.backchannel_logout_uri;
                if self.post(uri, &token).await {
                    Outcome::Delivered
                } else if owed.attempts.saturating_add(1) >= self.attempt_limit() {
                    Outcome::GivenUp
                } else {
                    Outcome::Retrying
                }
            }
        };
        let retry_at = match outcome {
            Outcome::Retrying => {
                let wait = chrono::Duration::from_std(
                    self.delivery.backoff(owed.attempts.saturating_add(1)),
                )
                .map_err(|e| Error::Internal(e.to_string()))?;
                Some(now() + wait)
            }
            _ => None,
        };
        store.settle_logout(owed.session_id, retry_at).await?;
        if outcome == Outcome::GivenUp {
            tracing::warn!(
                session = %owed.session_id,
                client_id = %owed.client_id,
                attempts = owed.attempts.saturating_add(1),
                "back-channel logout given up: the client never accepted the logout token"
            );
        }
        metrics()
            .backchannel_logouts
            .get_or_create(&crate::metrics::OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
        Ok(())
    }

    fn attempt_limit(&self) -> i32 {
        i32::try_from(self.delivery.attempts).unwrap_or(i32::MAX)
    }

    /// The logout token for `owed`, signed as the client's ID tokens are.
    async fn logout_token(&self, owed: &LogoutOwed, alg: &str) -> Result<String, Error> {
        let iat = now().timestamp();
        let claims = LogoutClaims {
            iss: self.provider.oidc_issuer().to_owned(),
            sub: owed.user_id.to_string(),
            aud: owed.client_id.clone(),
            iat,
            exp: iat + LOGOUT_TOKEN_TTL_SECS,
            jti: Uuid::now_v7().to_string(),
            sid: owed.browser_session_id.map(|id| id.to_string()),
            events: serde_json::json!({ LOGOUT_EVENT: {} }),
        };
        // `logout+jwt` (section 2.4): a logout token can never pass for an
        // ID token at a library that checks the type.
        self.provider.sign_jwt(alg, "logout+jwt", claims).await
    }

    /// POSTs the token (section 2.5); whether the client accepted it (2xx).
    /// Redirects are not followed: the registered URI answers or fails.
    async fn post(&self, uri: &str, token: &str) -> bool {
        // A JWT is base64url and dots: nothing in it needs form-encoding.
        let answer = self
            .http
            .post(uri)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(format!("logout_token={token}"))
            .send()
            .await;
        match answer {
            Ok(r) if r.status().is_success() => true,
            Ok(r) => {
                tracing::info!(status = r.status().as_u16(), %uri, "back-channel logout refused");
                false
            }
            Err(e) => {
                tracing::info!(error = %e, %uri, "back-channel logout not delivered");
                false
            }
        }
    }
}

/// An HTTP client on rustls (ring, as the rest of the tree) trusting the
/// public roots, following no redirects.
fn http_client(timeout: Duration) -> Result<reqwest::Client, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| Error::Internal(format!("the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_twice_as_long_each_time_up_to_the_cap() {
        let d = Delivery {
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(600),
            ..Delivery::default()
        };
        let waits: Vec<u64> = (1..=12).map(|n| d.backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        assert_eq!(d.backoff(i32::MAX), Duration::from_secs(600));
        assert_eq!(d.backoff(0), Duration::from_secs(1));
    }
}
