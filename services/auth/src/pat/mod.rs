//! Personal access tokens (issue 31): created by a user (or an operator for
//! a user), listed, revoked, and exchanged by the verifiers for a short-lived
//! access token that stands for them: the caller every service already
//! understands, holding only the token's scopes, with the token's id as its
//! session, so that revoking the token (or its owner's deletion, password or
//! roles change, which revoke it here too) refuses it everywhere within a
//! second through the revocation events. Rules here; the store is
//! [`store`], the gRPC adapter [`grpc`].

pub mod grpc;
pub mod store;

use crate::{core::AuthCore, error::Error, oauth::hash};
use chrono::{DateTime, Utc};
use std::{sync::Arc, time::Duration};
use store::{TokenRecord, TokenStore};
use suite_events::Event;
use suite_proto::{
    auth::{PersonalAccessTokenCreated, PersonalAccessTokenRevoked, RevocationReason},
    time::now,
};
use suite_tokens::{Audience, Caller, Claims, TokenError, pat, roles};
use uuid::Uuid;

/// The scopes a personal access token may carry.
pub const SCOPES: &[&str] = &["user:read", "user:write", suite_tokens::ADMIN_SCOPE];
/// The longest an exchanged access token lives: its verifiers exchange the
/// personal access token again after it, which is when its last use is
/// recorded.
const EXCHANGED_TTL: Duration = Duration::from_secs(300);
/// A use is recorded at most this often per token.
const TOUCH_EVERY: chrono::Duration = chrono::Duration::minutes(1);
/// Revoked tokens are listed no more (expired ones are, marked by their
/// expiry); both are deleted this long after.
const KEEP_DEAD: chrono::Duration = chrono::Duration::days(30);
/// The longest name.
const MAX_NAME_CHARS: usize = 100;

/// The rules of personal access tokens over their store.
pub struct TokenCore {
    store: Arc<dyn TokenStore>,
    auth: Arc<AuthCore>,
    /// The longest lifetime a token may be given (PAT_MAX_LIFETIME_DAYS).
    max_lifetime: Duration,
    /// How recent a sign-in with a second factor must be to create one,
    /// for a user who has a factor (STEP_UP_MAX_AGE_SECS).
    step_up_max_age: Duration,
}

/// What a creation asks for.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// Whose (empty: the caller's).
    pub user_id: String,
}

impl TokenCore {
    pub fn new(
        store: Arc<dyn TokenStore>,
        auth: Arc<AuthCore>,
        max_lifetime: Duration,
        step_up_max_age: Duration,
    ) -> Self {
        Self {
            store,
            auth,
            max_lifetime,
            step_up_max_age,
        }
    }

    /// Creates a token: the record, and the secret (shown once).
    pub async fn create(
        &self,
        caller: &Caller,
        new: NewToken,
    ) -> Result<(TokenRecord, String), Error> {
        let user_id = whose(
            caller,
            &new.user_id,
            "only admins may create a token for another user",
        )?;
        let by_operator = caller.user_id() != Some(user_id);
        let now = now();
        let name = new.name.trim().to_owned();
        let mut bad = Vec::new();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            bad.push(("name", format!("must be 1 to {MAX_NAME_CHARS} characters")));
        } else if name.chars().any(char::is_control) {
            bad.push(("name", "must not contain control characters".to_owned()));
        }
        let mut scopes: Vec<String> = Vec::new();
        for scope in &new.scopes {
            if !SCOPES.contains(&scope.as_str()) {
                bad.push((
                    "scopes",
                    format!("`{scope}` is not one of {}", SCOPES.join(", ")),
                ));
            } else if !scopes.contains(scope) {
                scopes.push(scope.clone());
            }
        }
        if new.scopes.is_empty() {
            bad.push(("scopes", "name at least one scope".to_owned()));
        }
        let longest = now + crate::core::chrono_duration(self.max_lifetime);
        match new.expires_at {
            None => bad.push((
                "expire_time",
                "required: when the token stops working".into(),
            )),
            Some(t) if t <= now => bad.push(("expire_time", "must be in the future".into())),
            Some(t) if t > longest => bad.push((
                "expire_time",
                format!(
                    "must be at most {} days away (PAT_MAX_LIFETIME_DAYS)",
                    self.max_lifetime.as_secs() / 86_400
                ),
            )),
            Some(_) => {}
        }
        if !bad.is_empty() {
            return Err(Error::InvalidArgument(bad));
        }
        let expires_at = new.expires_at.unwrap_or(longest);
        // The factors matter only to a user making their own (below).
        let users = self.auth.users();
        let owner = if by_operator {
            users.status(user_id).await?
        } else {
            users.status_with_factors(user_id).await?
        }
        .ok_or(Error::NotFound("user not found"))?;
        // A token outlives the sign-in that makes it: like a credential
        // change, it needs a recent second factor of a user who has one,
        // so a stolen password-only access token cannot mint a lasting one.
        // (An operator acting for a user answers to ADMINS_NEED_SECOND_FACTOR.)
        if !by_operator && !owner.second_factors.is_empty() {
            let max_age = i64::try_from(self.step_up_max_age.as_secs()).unwrap_or(i64::MAX);
            let recent = matches!(caller, Caller::User(u) if u.second_factor_within(max_age, now.timestamp()));
            if !recent {
                return Err(Error::FailedPrecondition(
                    "creating a token needs a recent sign-in with your second factor: sign in again",
                ));
            }
        }
        if scopes.iter().any(|s| s == suite_tokens::ADMIN_SCOPE)
            && !owner.roles.iter().any(|r| r == roles::ADMIN)
        {
            return Err(Error::invalid(
                "scopes",
                "`admin` is for administrators only, and this user is not one",
            ));
        }
        let secret = pat::generate().map_err(|e| Error::Internal(e.to_string()))?;
        let amr = match caller {
            Caller::User(u) if !by_operator => u.amr.join(" "),
            _ => String::new(),
        };
        let record = TokenRecord {
            id: Uuid::now_v7(),
            user_id,
            name,
            prefix: pat::shown(&secret).to_owned(),
            secret_hash: hash(&secret),
            scopes: scopes.join(" "),
            amr,
            created_at: now,
            expires_at,
            last_used_at: None,
            revoked_at: None,
        };
        let created = Event::new(
            &PersonalAccessTokenCreated {
                token_id: record.id.to_string(),
                user_id: user_id.to_string(),
                name: record.name.clone(),
                scopes,
                expire_time: expires_at.timestamp(),
                by_operator,
            },
            user_id,
        );
        self.store.create(&record, &[created]).await?;
        self.auth.wake();
        count("created");
        tracing::info!(
            token.id = %record.id,
            user.id = %user_id,
            token.prefix = %record.prefix,
            by_operator,
            "personal access token created"
        );
        Ok((record, secret))
    }

    /// A user's unrevoked tokens, newest first.
    pub async fn list(&self, caller: &Caller, user_id: &str) -> Result<Vec<TokenRecord>, Error> {
        let user_id = whose(
            caller,
            user_id,
            "only admins may list another user's tokens",
        )?;
        Ok(self.store.list(user_id).await?)
    }

    /// Revokes a token: its owner's, or anyone's for an operator. Another
    /// user's token is NotFound, exactly as one that does not exist.
    pub async fn revoke(&self, caller: &Caller, id: &str) -> Result<(), Error> {
        let id =
            Uuid::parse_str(id).map_err(|_| Error::invalid("id", "must be a token id (a UUID)"))?;
        let not_found = || Error::NotFound("personal access token not found");
        let record = self.store.get(id).await?.ok_or_else(not_found)?;
        let owner = caller.user_id() == Some(record.user_id);
        if !(owner || caller.is_operator()) || record.revoked_at.is_some() {
            return Err(not_found());
        }
        let reason = if owner {
            RevocationReason::ByUser
        } else {
            RevocationReason::ByAdmin
        };
        if !self
            .store
            .revoke(id, now(), &[revoked_event(&record, reason)])
            .await?
        {
            return Err(not_found());
        }
        self.auth.wake();
        count("revoked");
        tracing::info!(token.id = %id, user.id = %record.user_id, ?reason, "personal access token revoked");
        Ok(())
    }

    /// Revokes every token of `user` created before `before` (a deletion, a
    /// password or roles change: the rule sessions follow).
    pub async fn revoke_user(
        &self,
        user: Uuid,
        before: DateTime<Utc>,
        reason: RevocationReason,
    ) -> Result<usize, Error> {
        let event_for = move |t: &TokenRecord| revoked_event(t, reason);
        let revoked = self
            .store
            .revoke_user(user, before, now(), &event_for)
            .await?;
        if !revoked.is_empty() {
            self.auth.wake();
            crate::metrics::metrics()
                .personal_access_tokens
                .get_or_create(&crate::metrics::OutcomeLabels { outcome: "revoked" })
                .inc_by(revoked.len() as u64);
        }
        Ok(revoked.len())
    }

    /// The access token standing for `token` and the seconds it lives, or
    /// why there is none. The token is looked up by its hash only: an
    /// unknown token and a wrong one take the same path and answer alike.
    pub async fn exchange(&self, token: &str) -> Result<(String, i64), Error> {
        let outcome = self.exchange_checked(token).await;
        let label = match &outcome {
            Ok(_) => "valid",
            Err(Error::Unauthenticated(why)) => refusal_label(why),
            Err(_) => "error",
        };
        crate::metrics::metrics()
            .pat_exchanges
            .get_or_create(&crate::metrics::OutcomeLabels { outcome: label })
            .inc();
        outcome
    }

    async fn exchange_checked(&self, token: &str) -> Result<(String, i64), Error> {
        if !pat::check(token) {
            return Err(Error::Unauthenticated(MALFORMED));
        }
        let record = self
            .store
            .find(&hash(token))
            .await?
            .ok_or(Error::Unauthenticated(UNKNOWN))?;
        let now = now();
        if record.revoked_at.is_some() {
            return Err(Error::Unauthenticated(REVOKED));
        }
        if record.expires_at <= now {
            return Err(Error::Unauthenticated(EXPIRED));
        }
        // The owner as they are now: gone, or changed since the token was
        // made (before the event that revokes it here has arrived).
        let owner = self
            .auth
            .users()
            .status(record.user_id)
            .await?
            .ok_or(Error::Unauthenticated(REVOKED))?;
        if owner
            .sessions_valid_after
            .is_some_and(|after| record.created_at < after)
        {
            return Err(Error::Unauthenticated(REVOKED));
        }
        let settings = self.auth.settings();
        let ttl = EXCHANGED_TTL.min(settings.access_ttl).as_secs() as i64;
        let iat = now.timestamp();
        let exp = (iat + ttl).min(record.expires_at.timestamp());
        let claims = Claims {
            iss: settings.issuer.clone(),
            aud: Audience::One(settings.audience.clone()),
            sub: record.user_id.to_string(),
            exp,
            iat,
            nbf: iat,
            // Its instant is `now`, taken before the roles were read: a
            // roles or password change after it refuses this token.
            jti: crate::core::issue_id(now).to_string(),
            sid: Some(record.id.to_string()),
            roles: owner.roles,
            client_id: None,
            scope: Some(record.scopes.clone()),
            amr: suite_tokens::scope_list(&record.amr),
            auth_time: None,
            pat: true,
        };
        let access_token = self
            .auth
            .keys()
            .active()
            .sign(&claims)
            .map_err(|e| Error::Internal(e.to_string()))?;
        // The last use, at most once a minute per token: never a write per
        // request (verifiers exchange once per token every few minutes).
        if record.last_used_at.is_none_or(|t| t < now - TOUCH_EVERY)
            && let Err(e) = self.store.touch(record.id, now, now - TOUCH_EVERY).await
        {
            tracing::warn!(error = %e, token.id = %record.id, "recording a token's use failed");
        }
        Ok((access_token, exp - iat))
    }

    /// Deletes tokens revoked or expired long ago.
    pub async fn prune(&self) -> Result<u64, Error> {
        Ok(self.store.prune(now() - KEEP_DEAD).await?)
    }
}

const MALFORMED: &str = "malformed personal access token";
const UNKNOWN: &str = "invalid personal access token";
const REVOKED: &str = "personal access token revoked";
const EXPIRED: &str = "personal access token expired";

/// The metric's outcome of a refusal.
fn refusal_label(why: &str) -> &'static str {
    match why {
        MALFORMED => "malformed",
        REVOKED => "revoked",
        EXPIRED => "expired",
        _ => "unknown",
    }
}

/// The exchange's refusals as the verifiers' token errors (the auth
/// service's own verifier exchanges in process).
pub fn token_error(e: Error) -> TokenError {
    match e {
        Error::Unauthenticated(REVOKED) => TokenError::Revoked,
        Error::Unauthenticated(EXPIRED) => TokenError::Expired,
        Error::Unauthenticated(_) => TokenError::Invalid("unknown personal access token"),
        other => TokenError::Unavailable(other.to_string()),
    }
}

/// The user a call acts on: the caller (empty `user_id`), or the one named,
/// which only an operator may name.
fn whose(caller: &Caller, user_id: &str, denied: &'static str) -> Result<Uuid, Error> {
    if user_id.is_empty() {
        return caller
            .user_id()
            .ok_or(Error::invalid("user_id", "required with a service's token"));
    }
    let named = Uuid::parse_str(user_id)
        .map_err(|_| Error::invalid("user_id", "must be a user id (a UUID)"))?;
    if caller.user_id() != Some(named) && !caller.is_operator() {
        return Err(Error::PermissionDenied(denied));
    }
    Ok(named)
}

fn revoked_event(t: &TokenRecord, reason: RevocationReason) -> Event {
    Event::new(
        &PersonalAccessTokenRevoked {
            token_id: t.id.to_string(),
            user_id: t.user_id.to_string(),
            reason: reason.into(),
        },
        t.user_id,
    )
}

fn count(outcome: &'static str) {
    crate::metrics::metrics()
        .personal_access_tokens
        .get_or_create(&crate::metrics::OutcomeLabels { outcome })
        .inc();
}

/// The exchange in process, for the auth service's own verifier.
pub struct LocalExchange(pub Arc<TokenCore>);

impl suite_tokens::Exchange for LocalExchange {
    fn exchange<'a>(
        &'a self,
        token: &'a str,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<String, TokenError>> + Send + 'a>> {
        Box::pin(async move {
            self.0
                .exchange(token)
                .await
                .map(|(jwt, _)| jwt)
                .map_err(token_error)
        })
    }
}
