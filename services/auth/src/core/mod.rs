//! The auth service's core: login (the user service checks and throttles
//! the password), refresh-token rotation with reuse detection, sessions,
//! and access-token issuance. It takes parsed input and answers in domain
//! types; the gRPC adapter (`grpc`) converts at the edge and maps its
//! errors once.

use crate::{
    error::Error,
    keys::KeyRing,
    refresh,
    store::{AuthStore, SessionRecord, SuccessorKey, challenges::ChallengeStore},
    user_client::{Credentials, UserDirectory},
};
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use std::{sync::Arc, time::Duration};
use suite_events::{Event, outbox::Wake};
use suite_proto::{
    Login, Password,
    auth::{RevocationReason, SessionEnded, SessionReuseDetected, SessionRevoked, SessionStarted},
    time::now,
};
use suite_tokens::{Audience, Claims};
use uuid::Uuid;

pub mod account;
pub mod second_factor;
mod sessions;
pub use second_factor::{Challenge, LoginOutcome, Proof};

/// The longest user agent kept with a session.
const MAX_USER_AGENT_CHARS: usize = 256;

/// Lifetimes and limits.
#[derive(Debug, Clone)]
pub struct Settings {
    pub issuer: String,
    pub audience: String,
    pub access_ttl: Duration,
    pub idle_timeout: Duration,
    pub max_lifetime: Duration,
    pub reuse_grace: Duration,
    /// The OpenID Connect issuer, without a trailing slash.
    pub public_url: String,
    /// Whether anonymous clients may register (RFC 7591).
    pub dynamic_registration: bool,
}

/// A token pair just issued.
#[derive(Debug)]
pub struct Issued {
    pub access_token: String,
    pub expires_in: i64,
    pub refresh_token: String,
    pub session_id: Uuid,
}

/// One page of a user's live sessions.
#[derive(Debug)]
pub struct SessionPage {
    pub sessions: Vec<SessionRecord>,
    /// The caller's own session, if it is one of them.
    pub current: Option<Uuid>,
    pub next_page_token: String,
}

/// An OAuth grant to a user, for [`AuthCore::start_oauth_session`].
#[derive(Debug)]
pub(crate) struct OAuthSession {
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub roles: Vec<String>,
    pub client_id: String,
    /// The scopes granted, space-separated.
    pub scope: String,
    pub browser_session_id: Option<Uuid>,
    pub user_agent: String,
    pub ttl: Duration,
    /// How the user signed in (RFC 8176 values, space-separated).
    pub amr: String,
}

/// An OAuth client refreshing: who, its access tokens' lifetime, and the
/// scopes the new access token carries.
#[derive(Debug)]
pub(crate) struct OAuthRefresh<'a> {
    pub client_id: &'a str,
    pub ttl: Duration,
    pub scope: String,
}

/// What the client told us about itself at login.
#[derive(Debug, Default, Clone)]
pub struct ClientInfo {
    pub user_agent: String,
    pub ip_address: String,
}

pub struct AuthCore {
    /// The outbox relay, woken after each change so its event goes at once.
    events: Wake,
    store: Arc<dyn AuthStore>,
    /// Sign-ins waiting for their second factor.
    challenges: Arc<dyn ChallengeStore>,
    users: UserDirectory,
    keys: Arc<KeyRing>,
    settings: Settings,
}

impl AuthCore {
    pub fn new(
        store: Arc<dyn AuthStore>,
        users: UserDirectory,
        keys: Arc<KeyRing>,
        settings: Settings,
        events: Wake,
        challenges: Arc<dyn ChallengeStore>,
    ) -> Self {
        Self {
            events,
            store,
            challenges,
            users,
            keys,
            settings,
        }
    }

    /// Checks a login and password with the user service and opens a
    /// session, or, when the user has a second factor, a challenge for it.
    pub async fn login(
        &self,
        login: &Login,
        password: &Password,
        client: ClientInfo,
    ) -> Result<LoginOutcome, Error> {
        // Taken before the user's roles are read: the session and its tokens
        // date from then, so that a password or roles change that lands
        // while this login is under way cuts them off too (its cutoff is
        // later), rather than letting the old roles through.
        let now = now();
        // The user service throttles wrong passwords per account and
        // client address, counting each before it is checked.
        let user = match self
            .users
            .verify(login, password, &client.ip_address, &client.user_agent)
            .await?
        {
            Credentials::Valid(user) => user,
            Credentials::EmailUnverified => {
                count_login("email_unverified");
                return Err(Error::FailedPrecondition(
                    "the email address is not verified yet: follow the link in the mail we sent (a new one is on its way)",
                ));
            }
            Credentials::Invalid => {
                tracing::info!("login failed");
                count_login("bad_credentials");
                return Err(Error::Unauthenticated("invalid login or password"));
            }
            Credentials::Locked(wait) => {
                count_login("locked_out");
                return Err(Error::Throttled(wait));
            }
        };
        if !user.second_factors.is_empty() {
            count_login("second_factor_asked");
            let challenge = self.challenge(&user, "", &client).await?;
            return Ok(LoginOutcome::SecondFactor(challenge));
        }
        count_login("success");
        Ok(LoginOutcome::Issued(
            self.open_session(user.id, user.roles, client, "pwd", now)
                .await?,
        ))
    }

    /// Opens a first-party session of `user_id` signed in by `amr`, and
    /// issues its tokens.
    async fn open_session(
        &self,
        user_id: Uuid,
        roles: Vec<String>,
        client: ClientInfo,
        amr: &str,
        now: DateTime<Utc>,
    ) -> Result<Issued, Error> {
        let (refresh_token, hash) =
            refresh::new_token().map_err(|e| Error::Internal(e.to_string()))?;
        let successor_key =
            refresh::new_successor_key().map_err(|e| Error::Internal(e.to_string()))?;
        let session = SessionRecord {
            id: Uuid::now_v7(),
            user_id,
            created_at: now,
            last_used_at: now,
            expires_at: now + chrono_duration(self.settings.max_lifetime),
            user_agent: client
                .user_agent
                .chars()
                .take(MAX_USER_AGENT_CHARS)
                .collect(),
            ip_address: client.ip_address,
            revoked_at: None,
            successor_key: SuccessorKey(successor_key),
            client_id: None,
            scope: None,
            browser_session_id: None,
            amr: amr.to_owned(),
        };
        let started = Event::new(
            &SessionStarted {
                session_id: session.id.to_string(),
                user_id: user_id.to_string(),
                user_agent: session.user_agent.clone(),
                ip_address: session.ip_address.clone(),
            },
            user_id,
        );
        self.store
            .create_session(&session, &hash, &[started])
            .await?;
        self.events.wake();
        tracing::info!(user.id = %user_id, session.id = %session.id, amr, "logged in");
        self.issue(&session, roles, refresh_token, now)
    }

    /// Opens the session of an OAuth grant to a user and issues its access
    /// token (and its refresh token, which the caller hands out only if the
    /// grant allows one).
    pub(crate) async fn start_oauth_session(&self, grant: OAuthSession) -> Result<Issued, Error> {
        let now = now();
        let (refresh_token, hash) =
            refresh::new_token().map_err(|e| Error::Internal(e.to_string()))?;
        let successor_key =
            refresh::new_successor_key().map_err(|e| Error::Internal(e.to_string()))?;
        let session = SessionRecord {
            id: grant.session_id,
            user_id: grant.user_id,
            created_at: now,
            last_used_at: now,
            expires_at: now + chrono_duration(self.settings.max_lifetime),
            user_agent: grant
                .user_agent
                .chars()
                .take(MAX_USER_AGENT_CHARS)
                .collect(),
            ip_address: String::new(),
            revoked_at: None,
            successor_key: SuccessorKey(successor_key),
            client_id: Some(grant.client_id),
            scope: Some(grant.scope.clone()),
            browser_session_id: grant.browser_session_id,
            amr: grant.amr.clone(),
        };
        let started = Event::new(
            &SessionStarted {
                session_id: session.id.to_string(),
                user_id: grant.user_id.to_string(),
                user_agent: session.user_agent.clone(),
                ip_address: String::new(),
            },
            grant.user_id,
        );
        self.store
            .create_session(&session, &hash, &[started])
            .await?;
        self.events.wake();
        self.issue_as(
            &session,
            grant.roles,
            refresh_token,
            now,
            grant.ttl,
            Some(grant.scope),
        )
    }

    /// A refresh token and its session, without using it (introspection,
    /// revocation, and the token endpoint's checks before a refresh).
    pub(crate) async fn peek_refresh(
        &self,
        token: &str,
    ) -> Result<Option<(crate::store::TokenRecord, SessionRecord)>, Error> {
        if !refresh::well_formed(token) {
            return Ok(None);
        }
        Ok(self.store.find_token(&refresh::hash(token)).await?)
    }

    /// Whether `session` is live now (not revoked, expired or idle).
    pub(crate) fn session_live(&self, session: &SessionRecord) -> bool {
        self.is_live(session, now())
    }

    /// The session `id`, if there is one.
    pub(crate) async fn session(&self, id: Uuid) -> Result<Option<SessionRecord>, Error> {
        Ok(self.store.get_session(id).await?)
    }

    /// Ends session `id` (of `user_id`) for `reason`, with its event.
    pub(crate) async fn end_session(
        &self,
        id: Uuid,
        user_id: Uuid,
        reason: RevocationReason,
    ) -> Result<bool, Error> {
        let done = self
            .store
            .revoke_session(id, now(), &[revoked(id, user_id, reason)])
            .await?;
        if done {
            self.events.wake();
        }
        Ok(done)
    }

    /// Checks a password as a login does (the user service's throttle and
    /// lockout, the same metrics), for the provider's sign-in page.
    pub(crate) async fn check_password(
        &self,
        login: &Login,
        password: &Password,
        ip_address: &str,
        user_agent: &str,
    ) -> Result<Credentials, Error> {
        let answer = self
            .users
            .verify(login, password, ip_address, user_agent)
            .await?;
        count_login(match &answer {
            Credentials::Valid(_) => "success",
            Credentials::EmailUnverified => "email_unverified",
            Credentials::Invalid => "bad_credentials",
            Credentials::Locked(_) => "locked_out",
        });
        Ok(answer)
    }

    /// Revokes `session` with `event` (see [`Self::revoke`]).
    pub(crate) async fn revoke_with(
        &self,
        session: &SessionRecord,
        event: Event,
    ) -> Result<bool, Error> {
        self.revoke(session, now(), event).await
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn users(&self) -> &UserDirectory {
        &self.users
    }

    pub(crate) fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Wakes the outbox relay after a change written with events.
    pub(crate) fn wake(&self) {
        self.events.wake();
    }

    /// Exchanges a refresh token for a new pair, retiring it. A retired token
    /// presented again after the grace window ends its whole session.
    pub async fn refresh(&self, token: &str) -> Result<Issued, Error> {
        self.refresh_for(token, None).await
    }

    /// [`Self::refresh`] for the OAuth client `client` (whose sessions only
    /// it may refresh, and which may narrow the scopes), or for the suite's
    /// own first-party clients (`None`: OAuth sessions are refused).
    pub(crate) async fn refresh_for(
        &self,
        token: &str,
        client: Option<&OAuthRefresh<'_>>,
    ) -> Result<Issued, Error> {
        if token.is_empty() {
            return Err(Error::invalid("refresh_token", "is required"));
        }
        let invalid = || Error::Unauthenticated("invalid or expired refresh token");
        if !refresh::well_formed(token) {
            return Err(invalid());
        }
        let hash = refresh::hash(token);
        let (record, session) = self.store.find_token(&hash).await?.ok_or_else(invalid)?;
        let now = now();
        if !self.is_live(&session, now) {
            return Err(invalid());
        }
        // A refresh token works only for the client it was issued to.
        if session.client_id.as_deref() != client.map(|c| c.client_id) {
            return Err(invalid());
        }
        let in_grace = match record.retired_at {
            None => false,
            Some(retired) if now - retired <= chrono_duration(self.settings.reuse_grace) => true,
            Some(_) => {
                let reuse = Event::new(
                    &SessionReuseDetected {
                        session_id: session.id.to_string(),
                        user_id: session.user_id.to_string(),
                    },
                    session.user_id,
                );
                self.revoke(&session, now, reuse).await?;
                crate::metrics::metrics().refresh_token_reuse.inc();
                tracing::warn!(
                    security_event = "refresh_token_reuse",
                    session.id = %session.id,
                    user.id = %session.user_id,
                    "a retired refresh token was presented again; the session is revoked"
                );
                return Err(invalid());
            }
        };

        // The user may have been deleted, or have changed their password.
        let Some(status) = self.users.status(session.user_id).await? else {
            let revoked = revoked(session.id, session.user_id, RevocationReason::UserDeleted);
            self.revoke(&session, now, revoked).await?;
            return Err(invalid());
        };
        if let Some(cutoff) = status.sessions_valid_after
            && session.created_at < cutoff
        {
            // A password or roles change (the status does not say which).
            let revoked = revoked(session.id, session.user_id, RevocationReason::Unspecified);
            self.revoke(&session, now, revoked).await?;
            return Err(invalid());
        }

        // One successor per token, whoever asks: redemptions inside the
        // grace window hand out the one already there, never a second.
        let next = refresh::successor(&session.successor_key.0, token)
            .map_err(|e| Error::Internal(e.to_string()))?;
        let next_hash = refresh::hash(&next);
        // A concurrent refresh of the same token may win the race to rotate
        // it: this call is then within the grace window by definition.
        let rotated = !in_grace
            && self
                .store
                .rotate(session.id, &hash, &next_hash, now)
                .await?;
        if !rotated
            && !self
                .store
                .touch_successor(session.id, &next_hash, now)
                .await?
        {
            return Err(invalid());
        }
        let (ttl, scope) = match client {
            Some(c) => (c.ttl, Some(c.scope.clone())),
            None => (self.settings.access_ttl, None),
        };
        self.issue_as(&session, status.roles, next, now, ttl, scope)
    }

    /// Ends the session of a refresh token. Unknown tokens are fine: logging
    /// out twice is not an error.
    pub async fn logout(&self, token: &str) -> Result<(), Error> {
        if token.is_empty() {
            return Err(Error::invalid("refresh_token", "is required"));
        }
        if !refresh::well_formed(token) {
            return Ok(());
        }
        if let Some((_, session)) = self.store.find_token(&refresh::hash(token)).await?
            && self
                .revoke(
                    &session,
                    now(),
                    Event::new(
                        &SessionEnded {
                            session_id: session.id.to_string(),
                            user_id: session.user_id.to_string(),
                        },
                        session.user_id,
                    ),
                )
                .await?
        {
            tracing::info!(session.id = %session.id, "logged out");
        }
        Ok(())
    }

    /// Revokes `session` with its event; true if this call did.
    async fn revoke(
        &self,
        session: &SessionRecord,
        at: DateTime<Utc>,
        event: Event,
    ) -> Result<bool, Error> {
        let done = self.store.revoke_session(session.id, at, &[event]).await?;
        if done {
            self.events.wake();
        }
        Ok(done)
    }

    /// The public keys.
    pub fn jwks(&self) -> Result<JwkSet, Error> {
        self.keys.jwks().map_err(|e| Error::Internal(e.to_string()))
    }

    /// Deletes dead sessions; returns how many.
    pub async fn prune(&self) -> Result<u64, Error> {
        let now = now();
        let idle_before = now - chrono_duration(self.settings.idle_timeout);
        let sessions = self.store.prune(now, idle_before).await?;
        Ok(sessions + self.prune_challenges().await?)
    }

    fn is_live(&self, session: &SessionRecord, now: DateTime<Utc>) -> bool {
        session.revoked_at.is_none()
            && session.expires_at > now
            && session.last_used_at + chrono_duration(self.settings.idle_timeout) > now
    }

    /// Signs an access token for the session and bundles it with the refresh token.
    fn issue(
        &self,
        session: &SessionRecord,
        roles: Vec<String>,
        refresh_token: String,
        now: DateTime<Utc>,
    ) -> Result<Issued, Error> {
        self.issue_as(
            session,
            roles,
            refresh_token,
            now,
            self.settings.access_ttl,
            None,
        )
    }

    /// [`Self::issue`] with a lifetime, and for an OAuth session the scopes
    /// this token carries (the session's, or fewer).
    fn issue_as(
        &self,
        session: &SessionRecord,
        roles: Vec<String>,
        refresh_token: String,
        now: DateTime<Utc>,
        ttl: Duration,
        scope: Option<String>,
    ) -> Result<Issued, Error> {
        let ttl = ttl.as_secs() as i64;
        let iat = now.timestamp();
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: Audience::One(self.settings.audience.clone()),
            sub: session.user_id.to_string(),
            exp: iat + ttl,
            iat,
            nbf: iat,
            // Its instant is `now`, which the caller took before reading
            // the roles: the verifiers' revocations compare it with a roles
            // or password change's instant, so a token minted from roles
            // read before such a change is refused after it.
            jti: issue_id(now).to_string(),
            sid: Some(session.id.to_string()),
            roles,
            client_id: session.client_id.clone(),
            scope: session
                .client_id
                .as_ref()
                .map(|_| scope.unwrap_or_default()),
            amr: suite_tokens::scope_list(&session.amr),
            // A first-party session began with its sign-in (a refresh keeps
            // the instant); an OAuth session's began at the code's exchange,
            // later than the sign-in, so its tokens claim no time at all.
            auth_time: (session.client_id.is_none() && !session.amr.is_empty())
                .then(|| session.created_at.timestamp()),
            pat: false,
        };
        let access_token = self
            .keys
            .active()
            .sign(&claims)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok(Issued {
            access_token,
            expires_in: ttl,
            refresh_token,
            session_id: session.id,
        })
    }
}

/// The event of the revocation of `user_id`'s session `session_id` for `reason`.
pub(crate) fn revoked(session_id: Uuid, user_id: Uuid, reason: RevocationReason) -> Event {
    Event::new(
        &SessionRevoked {
            session_id: session_id.to_string(),
            user_id: user_id.to_string(),
            reason: reason.into(),
        },
        user_id,
    )
}

pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Counts a login attempt by outcome (`suite_auth_logins_total`).
fn count_login(outcome: &'static str) {
    crate::metrics::metrics()
        .logins
        .get_or_create(&crate::metrics::OutcomeLabels { outcome })
        .inc();
}

/// A token id (a UUIDv7) whose instant is `at`, to the millisecond.
pub(crate) fn issue_id(at: DateTime<Utc>) -> Uuid {
    let seconds = u64::try_from(at.timestamp()).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        seconds,
        at.timestamp_subsec_nanos(),
    ))
}
