//! Sign-in with a second factor: a right password for a user who has one
//! opens a login challenge (single use, five minutes, dead after a few wrong
//! codes) instead of a session; a code of the factor, checked by the user
//! service (which throttles wrong codes as wrong passwords), completes it.

use super::{AuthCore, ClientInfo, Issued, count_login};
use crate::{
    error::Error,
    oauth::{hash, random_token, same},
    refresh,
    store::challenges::ChallengeRecord,
    user_client::{FactorAnswer, UserStatus},
};
use std::time::Duration;
use suite_proto::time::now;

/// How long a challenge waits for its code.
pub const CHALLENGE_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// Wrong codes a challenge takes before it dies (the throttle counts them
/// per account as well).
const MAX_ATTEMPTS: i32 = 5;
/// What the user may give for a challenge.
const METHODS: [&str; 2] = ["totp", "recovery_code"];

/// A login waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The challenge itself: the secret to pass back with the code.
    pub challenge: String,
    pub expires_in: i64,
    pub methods: Vec<String>,
}

/// What a login with the right password leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    Issued(Issued),
    SecondFactor(Challenge),
}

/// Why a challenge's code did not sign in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown, expired, used, dead of wrong codes, or another request's.
    Unknown,
    /// A wrong (or used) code: try again with the same challenge.
    WrongCode,
    /// Too many wrong codes or passwords for the account.
    Locked(Duration),
}

impl AuthCore {
    /// Opens a challenge for `user`, whose password was right, tied to the
    /// provider's pending request `request_id` (empty: the API's login).
    pub(crate) async fn challenge(
        &self,
        user: &UserStatus,
        request_id: &str,
        client: &ClientInfo,
    ) -> Result<Challenge, Error> {
        let secret = random_token()?;
        let at = now();
        self.challenges
            .create(&ChallengeRecord {
                hash: hash(&secret),
                user_id: user.id,
                request_id: request_id.to_owned(),
                user_agent: client.user_agent.chars().take(256).collect(),
                ip_address: client.ip_address.clone(),
                attempts: 0,
                created_at: at,
                expires_at: at + CHALLENGE_TTL,
                used_at: None,
            })
            .await?;
        tracing::info!(user.id = %user.id, "password right; second factor asked");
        Ok(Challenge {
            challenge: secret,
            expires_in: CHALLENGE_TTL.num_seconds(),
            methods: METHODS.iter().map(|m| (*m).to_owned()).collect(),
        })
    }

    /// Takes `challenge` with `code`: its record and the factor's `amr`
    /// method if the code is right (the challenge is then used up).
    pub(crate) async fn take_challenge(
        &self,
        challenge: &str,
        request_id: &str,
        code: &str,
        ip_address: &str,
    ) -> Result<Result<(ChallengeRecord, String), Refusal>, Error> {
        if !refresh::well_formed(challenge) {
            return Ok(Err(Refusal::Unknown));
        }
        let key = hash(challenge);
        let Some(record) = self.challenges.find(&key).await? else {
            return Ok(Err(Refusal::Unknown));
        };
        let at = now();
        if record.used_at.is_some()
            || record.expires_at <= at
            || record.attempts >= MAX_ATTEMPTS
            || !same(&record.request_id, request_id)
        {
            return Ok(Err(Refusal::Unknown));
        }
        let code = code.trim();
        if code.is_empty() || code.len() > 64 {
            return Ok(Err(Refusal::WrongCode));
        }
        match self
            .users
            .verify_factor(record.user_id, code, ip_address)
            .await?
        {
            FactorAnswer::Valid(method) => {
                if !self.challenges.spend(&key, at, MAX_ATTEMPTS).await? {
                    return Ok(Err(Refusal::Unknown));
                }
                Ok(Ok((record, method)))
            }
            FactorAnswer::Invalid => {
                self.challenges.fail(&key).await?;
                count_login("bad_second_factor");
                tracing::info!(user.id = %record.user_id, "second factor refused");
                Ok(Err(Refusal::WrongCode))
            }
            FactorAnswer::Locked(wait) => {
                count_login("locked_out");
                Ok(Err(Refusal::Locked(wait)))
            }
        }
    }

    /// Completes a login with its challenge and a code of the user's second
    /// factor: the token pair of a new session, signed in with both.
    pub async fn complete_login(
        &self,
        challenge: &str,
        code: &str,
        ip_address: &str,
    ) -> Result<Issued, Error> {
        let now = now();
        if challenge.is_empty() {
            return Err(Error::invalid("challenge", "is required"));
        }
        if code.trim().is_empty() {
            return Err(Error::invalid("code", "is required"));
        }
        let (record, method) = match self.take_challenge(challenge, "", code, ip_address).await? {
            Ok(taken) => taken,
            Err(Refusal::Unknown) => {
                return Err(Error::Unauthenticated(
                    "this sign-in expired or was used: log in again",
                ));
            }
            Err(Refusal::WrongCode) => {
                return Err(Error::Unauthenticated("wrong or used code"));
            }
            Err(Refusal::Locked(wait)) => return Err(Error::Throttled(wait)),
        };
        // Roles as they are now (the challenge keeps none).
        let Some(status) = self.users.status(record.user_id).await? else {
            return Err(Error::Unauthenticated(
                "this sign-in expired or was used: log in again",
            ));
        };
        count_login("success");
        let client = ClientInfo {
            user_agent: record.user_agent,
            ip_address: record.ip_address,
        };
        self.open_session(status.id, status.roles, client, &amr_with(&method), now)
            .await
    }

    /// Deletes challenges that expired a while ago.
    pub async fn prune_challenges(&self) -> Result<u64, Error> {
        Ok(self
            .challenges
            .prune(now() - chrono::Duration::hours(1))
            .await?)
    }
}

/// The `amr` of a sign-in with a password and the second factor `method`.
pub fn amr_with(method: &str) -> String {
    format!("pwd {method} mfa")
}
