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
    user_client::{FactorAnswer, PasskeyAnswer, PasskeyCheck, UserStatus},
};
use std::time::Duration;
use suite_proto::time::now;

/// How long a challenge waits for its code.
pub const CHALLENGE_TTL: chrono::Duration = chrono::Duration::minutes(5);
/// Wrong codes a challenge takes before it dies (the throttle counts them
/// per account as well).
const MAX_ATTEMPTS: i32 = 5;
/// The binding of a passwordless API sign-in's ceremony (its token is the
/// only secret: there is no browser or challenge to bind it to).
const API_PASSKEY_BINDING: &str = "api";

/// A login waiting for its second factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The challenge itself: the secret to pass back with the code.
    pub challenge: String,
    pub expires_in: i64,
    pub methods: Vec<String>,
    /// When the user has a passkey: the options for the browser (JSON).
    pub passkey_options: String,
}

/// A code, or a passkey's assertion, for a challenge.
#[derive(Debug, Clone, Copy, Default)]
pub struct Proof<'a> {
    pub code: &'a str,
    pub passkey_assertion: &'a str,
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
        let has_passkey = user.second_factors.iter().any(|k| k == "passkey");
        let has_totp = user.second_factors.iter().any(|k| k == "totp");
        // The ceremony is the challenge's: bound to it, finished only with it.
        let (passkey_ceremony, passkey_options) = if has_passkey {
            self.users
                .start_passkey(Some(user.id), &passkey_binding(&secret))
                .await?
        } else {
            (String::new(), String::new())
        };
        self.challenges
            .create(&ChallengeRecord {
                hash: hash(&secret),
                user_id: user.id,
                request_id: request_id.to_owned(),
                user_agent: client.user_agent.chars().take(256).collect(),
                ip_address: client.ip_address.clone(),
                passkey_ceremony,
                attempts: 0,
                created_at: at,
                expires_at: at + CHALLENGE_TTL,
                used_at: None,
            })
            .await?;
        tracing::info!(user.id = %user.id, "password right; second factor asked");
        let mut methods = Vec::new();
        if has_totp {
            methods.push("totp".to_owned());
        }
        if has_passkey {
            methods.push("passkey".to_owned());
        }
        methods.push("recovery_code".to_owned());
        Ok(Challenge {
            challenge: secret,
            expires_in: CHALLENGE_TTL.num_seconds(),
            methods,
            passkey_options,
        })
    }

    /// Takes `challenge` with `proof`: its record and the factor's `amr`
    /// method if the proof is good (the challenge is then used up).
    pub(crate) async fn take_challenge(
        &self,
        challenge: &str,
        request_id: &str,
        proof: Proof<'_>,
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
        let code = proof.code.trim();
        let binding = passkey_binding(challenge);
        let passkey = (!proof.passkey_assertion.is_empty()).then_some(PasskeyAnswer {
            ceremony: &record.passkey_ceremony,
            binding: &binding,
            assertion_json: proof.passkey_assertion,
        });
        if passkey.is_some() && record.passkey_ceremony.is_empty() {
            return Ok(Err(Refusal::WrongCode));
        }
        if passkey.is_none() && (code.is_empty() || code.len() > 64) {
            return Ok(Err(Refusal::WrongCode));
        }
        match self
            .users
            .verify_factor(record.user_id, code, passkey, ip_address)
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
        proof: Proof<'_>,
        ip_address: &str,
    ) -> Result<Issued, Error> {
        let now = now();
        if challenge.is_empty() {
            return Err(Error::invalid("challenge", "is required"));
        }
        // Neither a code nor an assertion: no proof at all, which is a
        // failed authentication (the contract cannot require one of two).
        if proof.code.trim().is_empty() && proof.passkey_assertion.is_empty() {
            return Err(Error::Unauthenticated(
                "a code or a passkey assertion (passkey_assertion_json) is required",
            ));
        }
        let (record, method) = match self
            .take_challenge(challenge, "", proof, ip_address)
            .await?
        {
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

    /// Begins a passwordless API sign-in: the ceremony and the browser's
    /// options.
    pub async fn start_passkey_login(&self) -> Result<(String, String, i64), Error> {
        let (ceremony, options) = self.users.start_passkey(None, API_PASSKEY_BINDING).await?;
        Ok((ceremony, options, CHALLENGE_TTL.num_seconds()))
    }

    /// Finishes a passwordless sign-in: the tokens of a new session.
    pub async fn finish_passkey_login(
        &self,
        ceremony: &str,
        assertion: &str,
        client: ClientInfo,
    ) -> Result<Issued, Error> {
        let now = now();
        if ceremony.is_empty() {
            return Err(Error::invalid("ceremony", "is required"));
        }
        if assertion.is_empty() {
            return Err(Error::invalid("assertion_json", "is required"));
        }
        let answer = PasskeyAnswer {
            ceremony,
            binding: API_PASSKEY_BINDING,
            assertion_json: assertion,
        };
        let (user, method) = match self
            .users
            .verify_passkey(answer, &client.ip_address)
            .await?
        {
            PasskeyCheck::Valid(user, method) => (user, method),
            PasskeyCheck::EmailUnverified => {
                count_login("email_unverified");
                return Err(Error::FailedPrecondition(
                    "the email address is not verified yet: follow the link in the mail we sent (a new one is on its way)",
                ));
            }
            PasskeyCheck::Invalid => {
                count_login("bad_passkey");
                return Err(Error::Unauthenticated(
                    "the passkey was not accepted: start again",
                ));
            }
        };
        count_login("success");
        self.open_session(user.id, user.roles, client, &passkey_amr(&method), now)
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

/// The `amr` of a passwordless sign-in with a passkey (`hwk` or `swk`): a
/// passkey verifies its user (a PIN or biometrics), so it is two factors.
pub fn passkey_amr(method: &str) -> String {
    format!("{method} mfa")
}

/// The binding of a challenge's passkey ceremony: a digest of the
/// challenge, which only its holder can present.
fn passkey_binding(challenge: &str) -> String {
    format!("challenge:{}", hash(challenge))
}
