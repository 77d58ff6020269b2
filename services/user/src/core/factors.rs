//! Second factors: enrolling and confirming a TOTP authenticator, removing
//! factors, recovery codes, the operators' reset, and the auth service's
//! check of a code at sign-in (counted by the password throttle).

use super::{
    UserCore,
    access::{Access, authorize, operators_only, services_only},
    email::addressee,
};
use crate::{
    domain::UserRef,
    error::Error,
    factors::{self, Sealer, TOTP_KIND},
    store::{
        Also,
        factors::{FactorRecord, FactorStore},
    },
    throttle::Account,
};
use std::{sync::Arc, time::Duration};
use suite_events::Event;
use suite_proto::{
    time::now,
    user::{RecoveryCodeUsed, RecoveryCodesGenerated, SecondFactorAdded, SecondFactorRemoved},
};
use suite_tokens::Caller;
use uuid::Uuid;

/// The longest name of a factor.
const MAX_NAME_CHARS: usize = 64;
/// How long an enrolment waits for its first code before it is pruned.
pub const UNCONFIRMED_TTL: Duration = Duration::from_secs(3600);

/// What the factors need: their store, the key that seals TOTP secrets
/// (none: factors cannot be enrolled), the issuer authenticator apps show,
/// and how recent a second factor must be for changes to credentials.
#[derive(Clone)]
pub struct FactorPolicy {
    pub store: Arc<dyn FactorStore>,
    pub sealer: Option<Sealer>,
    pub issuer: String,
    pub step_up_max_age: Duration,
    /// The WebAuthn relying party (none: passkeys are off).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
}

/// A TOTP enrolment begun: the factor and what to show.
pub struct TotpEnrolment {
    pub factor: FactorRecord,
    pub enrolment: factors::Enrolment,
}

/// A passkey's answer to a sign-in's ceremony.
#[derive(Clone, Copy)]
pub struct PasskeyAssertion<'a> {
    pub ceremony: &'a str,
    pub binding: &'a str,
    pub assertion_json: &'a str,
}

/// What a second factor's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorCheck {
    /// Right (and now used); the `amr` value of its method.
    Valid(&'static str),
    /// Wrong, used before, or the user has no factor.
    Invalid,
    /// Too many wrong codes or passwords: not checked.
    Locked(Duration),
}

impl UserCore {
    /// The user's factors and how many recovery codes are left.
    pub async fn list_factors(
        &self,
        caller: &Caller,
        target: UserRef,
    ) -> Result<(Vec<FactorRecord>, i64), Error> {
        let id = target.resolve(caller, "user_id")?;
        authorize(caller, id, Access::Read)?;
        self.live_user(id).await?;
        let store = &self.factors.store;
        Ok((store.list(id).await?, store.codes_left(id).await?))
    }

    /// The kinds of `user`'s confirmed factors (empty: none).
    pub async fn second_factors(&self, user: Uuid) -> Result<Vec<String>, Error> {
        let mut kinds: Vec<String> = self
            .factors
            .store
            .list(user)
            .await?
            .into_iter()
            .filter(|f| f.confirmed_at.is_some())
            .map(|f| f.kind)
            .collect();
        kinds.dedup();
        Ok(kinds)
    }

    /// Begins a TOTP enrolment for the caller.
    pub async fn enroll_totp(
        &self,
        caller: &Caller,
        target: UserRef,
        name: &str,
    ) -> Result<TotpEnrolment, Error> {
        let id = target.resolve(caller, "user_id")?;
        self.only_self(caller, id)?;
        let name = factor_name(name)?;
        let Some(sealer) = &self.factors.sealer else {
            return Err(Error::FailedPrecondition(
                "second factors are off: the service has no FACTOR_KEY",
            ));
        };
        let record = self.live_user(id).await?;
        self.require_step_up(caller, id).await?;
        let secret = factors::new_secret();
        let factor_id = Uuid::now_v7();
        let factor = FactorRecord {
            id: factor_id,
            user_id: id,
            kind: TOTP_KIND.to_owned(),
            name,
            secret: sealer
                .seal(id, factor_id, &secret)
                .map_err(|e| Error::Internal(e.to_string()))?,
            created_at: now(),
            confirmed_at: None,
            last_used_at: None,
            last_step: 0,
            credential_id: None,
        };
        self.factors.store.begin(&factor).await?;
        let enrolment = factors::enrolment(&secret, &self.factors.issuer, record.username.as_str());
        Ok(TotpEnrolment { factor, enrolment })
    }

    /// Confirms the caller's TOTP enrolment `factor_id` with `code`; the
    /// recovery codes if it is the first factor.
    pub async fn confirm_totp(
        &self,
        caller: &Caller,
        target: UserRef,
        factor_id: &str,
        code: &str,
        client_address: &str,
    ) -> Result<(FactorRecord, Vec<String>), Error> {
        let id = target.resolve(caller, "user_id")?;
        self.only_self(caller, id)?;
        let factor_id = parse_id(factor_id, "factor_id")?;
        let list = self.factors.store.list(id).await?;
        let first = !list.iter().any(|f| f.confirmed_at.is_some());
        let factor = list
            .into_iter()
            .find(|f| f.id == factor_id && f.kind == TOTP_KIND)
            .ok_or(Error::NotFound)?;
        if factor.confirmed_at.is_some() {
            return Err(Error::FailedPrecondition(
                "this authenticator is confirmed already",
            ));
        }
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid(
                "code",
                "must be the six digits the app shows",
            ));
        }
        let secret = self.open(&factor)?;
        let reservation = self
            .throttle
            .reserve(Account::User(id), client_address)
            .await?;
        let at = now();
        let Some(step) = factors::matching_step(&secret, code, at.timestamp()) else {
            self.throttle.fail(reservation).await;
            count_check("totp_confirm", "invalid");
            return Err(Error::invalid(
                "code",
                "is not a current code of this authenticator (check the device's clock)",
            ));
        };
        self.throttle.release(reservation).await?;
        let codes = if first {
            factors::new_recovery_codes()
        } else {
            Vec::new()
        };
        let hashes = hashes(id, &codes);
        let mut events = vec![Event::new(
            &SecondFactorAdded {
                user_id: id.to_string(),
                factor_id: factor.id.to_string(),
                kind: factor.kind.clone(),
            },
            id,
        )];
        if first {
            events.push(codes_generated(id));
        }
        let confirmed = self
            .factors
            .store
            .confirm(
                id,
                factor.id,
                step,
                at,
                first.then_some(hashes.as_slice()),
                &self.recorded(events),
            )
            .await?;
        if !confirmed {
            return Err(Error::Aborted(
                "the authenticator changed meanwhile: try again",
            ));
        }
        self.events.wake();
        count_check("totp_confirm", "valid");
        tracing::info!(user.id = %id, factor.id = %factor.id, "second factor added");
        Ok((
            FactorRecord {
                confirmed_at: Some(at),
                last_used_at: Some(at),
                last_step: step,
                ..factor
            },
            codes,
        ))
    }

    /// Removes factor `factor_id`: the user themself with step-up, or an operator.
    pub async fn delete_factor(
        &self,
        caller: &Caller,
        target: UserRef,
        factor_id: &str,
    ) -> Result<(), Error> {
        let id = target.resolve(caller, "user_id")?;
        authorize(caller, id, Access::Write)?;
        let factor_id = parse_id(factor_id, "factor_id")?;
        let by_operator = caller.user_id() != Some(id);
        if !by_operator {
            self.require_step_up(caller, id).await?;
        }
        let removed = self.remove(id, &[factor_id], by_operator).await?;
        if removed == 0 {
            return Err(Error::NotFound);
        }
        Ok(())
    }

    /// New recovery codes for the caller (the old ones stop working).
    pub async fn regenerate_recovery_codes(
        &self,
        caller: &Caller,
        target: UserRef,
    ) -> Result<Vec<String>, Error> {
        let id = target.resolve(caller, "user_id")?;
        self.only_self(caller, id)?;
        if self.second_factors(id).await?.is_empty() {
            return Err(Error::FailedPrecondition(
                "recovery codes go with a second factor: set one up first",
            ));
        }
        self.require_step_up(caller, id).await?;
        let codes = factors::new_recovery_codes();
        self.factors
            .store
            .replace_codes(
                id,
                &hashes(id, &codes),
                &self.recorded(vec![codes_generated(id)]),
            )
            .await?;
        self.events.wake();
        tracing::info!(user.id = %id, "recovery codes regenerated");
        Ok(codes)
    }

    /// Removes every factor of a user (an operator's recovery of a user who
    /// lost them): how many.
    pub async fn reset_factors(&self, caller: &Caller, target: UserRef) -> Result<usize, Error> {
        operators_only(
            caller,
            "only admins and the operator's suitectl may reset a user's factors",
        )?;
        let id = target.resolve(caller, "user_id")?;
        self.live_user(id).await?;
        let ids: Vec<Uuid> = self
            .factors
            .store
            .list(id)
            .await?
            .iter()
            .map(|f| f.id)
            .collect();
        let removed = self.remove(id, &ids, true).await?;
        // No factor left (or none there): the codes go too.
        self.factors.store.replace_codes(id, &[], &[]).await?;
        tracing::warn!(user.id = %id, removed, security_event = "factors_reset", "second factors reset by an operator");
        Ok(removed)
    }

    /// Checks `code` (a TOTP code or a recovery code) of `user_id` for the
    /// auth service's sign-in, counted by the password throttle.
    pub async fn verify_second_factor(
        &self,
        caller: &Caller,
        user_id: &str,
        code: &str,
        passkey: Option<PasskeyAssertion<'_>>,
        client_address: &str,
    ) -> Result<FactorCheck, Error> {
        services_only(caller, "only services may verify second factors")?;
        let id = parse_id(user_id, "user_id")?;
        let code = code.trim();
        let passkey = passkey.filter(|p| !p.ceremony.is_empty());
        if passkey.is_none() && (code.is_empty() || code.len() > 64) {
            return Ok(FactorCheck::Invalid);
        }
        let reservation = match self
            .throttle
            .reserve(Account::User(id), client_address.trim())
            .await
        {
            Ok(r) => r,
            Err(Error::Throttled(wait)) => {
                count_check("sign_in", "locked");
                return Ok(FactorCheck::Locked(wait));
            }
            Err(e) => return Err(e),
        };
        let answer = match passkey {
            Some(p) => {
                self.check_passkey(id, p.ceremony, p.binding, p.assertion_json)
                    .await
            }
            None => self.check_code(id, code).await,
        };
        match &answer {
            Ok(FactorCheck::Valid(_)) => self.throttle.release(reservation).await?,
            _ => self.throttle.fail(reservation).await,
        }
        let answer = answer?;
        count_check(
            "sign_in",
            match &answer {
                FactorCheck::Valid("rc") => "recovery_code",
                FactorCheck::Valid("hwk" | "swk") => "passkey",
                FactorCheck::Valid(_) => "valid",
                _ => "invalid",
            },
        );
        Ok(answer)
    }

    /// A code's check, after the throttle let it through.
    async fn check_code(&self, id: Uuid, code: &str) -> Result<FactorCheck, Error> {
        let at = now();
        let list = self.factors.store.list(id).await?;
        let confirmed: Vec<&FactorRecord> =
            list.iter().filter(|f| f.confirmed_at.is_some()).collect();
        if confirmed.is_empty() {
            return Ok(FactorCheck::Invalid);
        }
        if code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
            for factor in confirmed.iter().filter(|f| f.kind == TOTP_KIND) {
                // A secret that no longer opens (FACTOR_KEY changed) is a
                // factor that cannot sign in: the others, and recovery
                // codes, still can; an operator resets it.
                let secret = match self.open(factor) {
                    Ok(secret) => secret,
                    Err(e) => {
                        tracing::error!(user.id = %id, factor.id = %factor.id, error = %e,
                            "a TOTP secret does not open: was FACTOR_KEY changed?");
                        continue;
                    }
                };
                if let Some(step) = factors::matching_step(&secret, code, at.timestamp()) {
                    // Accepted once: a code of this step, or an earlier
                    // one, was used already if this finds nothing to raise.
                    if step > factor.last_step
                        && self.factors.store.use_step(factor.id, step, at).await?
                    {
                        return Ok(FactorCheck::Valid("otp"));
                    }
                    tracing::warn!(user.id = %id, security_event = "totp_replay", "a used TOTP code was presented again");
                    return Ok(FactorCheck::Invalid);
                }
            }
            return Ok(FactorCheck::Invalid);
        }
        let Some(canonical) = factors::canonical_code(code) else {
            return Ok(FactorCheck::Invalid);
        };
        let events_for = |left: i64| {
            self.recorded(vec![Event::new(
                &RecoveryCodeUsed {
                    user_id: id.to_string(),
                    remaining: i32::try_from(left).unwrap_or(i32::MAX),
                },
                id,
            )])
        };
        // The notice says how many are left, read before the use: a
        // concurrent use of another code may make it one too high.
        let left_after = (self.factors.store.codes_left(id).await? - 1).max(0);
        let letters: Vec<_> = self
            .store
            .get(id)
            .await?
            .map(|record| {
                self.mail
                    .letters
                    .recovery_code_used(&addressee(&record, record.email.as_str()), left_after)
            })
            .into_iter()
            .collect();
        let also = Also {
            letters: &letters,
            ..Also::default()
        };
        let used = self
            .factors
            .store
            .use_code(
                id,
                &factors::code_hash(id, &canonical),
                at,
                &events_for,
                &also,
            )
            .await?;
        if used.is_none() {
            return Ok(FactorCheck::Invalid);
        }
        self.events.wake();
        if !letters.is_empty() {
            self.mail.wake.wake();
        }
        tracing::warn!(user.id = %id, security_event = "recovery_code_used", "a recovery code signed a user in");
        Ok(FactorCheck::Valid("rc"))
    }

    /// Removes `ids` of `user` with their events: how many there were.
    async fn remove(&self, user: Uuid, ids: &[Uuid], by_operator: bool) -> Result<usize, Error> {
        if ids.is_empty() {
            return Ok(0);
        }
        let list = self.factors.store.list(user).await?;
        let events: Vec<Event> = list
            .iter()
            .filter(|f| ids.contains(&f.id) && f.confirmed_at.is_some())
            .map(|f| {
                Event::new(
                    &SecondFactorRemoved {
                        user_id: user.to_string(),
                        factor_id: f.id.to_string(),
                        kind: f.kind.clone(),
                        by_operator,
                    },
                    user,
                )
            })
            .collect();
        let removed = self
            .factors
            .store
            .remove(user, ids, &self.recorded(events))
            .await?;
        if !removed.is_empty() {
            self.events.wake();
            tracing::info!(user.id = %user, removed = removed.len(), by_operator, "second factors removed");
        }
        Ok(removed.len())
    }

    /// Refused unless the caller is the user: factors are enrolled by their
    /// owner, never for them.
    pub(super) fn only_self(&self, caller: &Caller, id: Uuid) -> Result<(), Error> {
        if caller.user_id() == Some(id) {
            Ok(())
        } else {
            Err(Error::PermissionDenied(
                "only the user themself may set up their second factors",
            ))
        }
    }

    /// Refused unless the caller signed in with a second factor recently,
    /// when `user` has one (changes to credentials need it: a stolen
    /// password-only token must not remove the factor that guards them).
    pub(super) async fn require_step_up(&self, caller: &Caller, user: Uuid) -> Result<(), Error> {
        if self.second_factors(user).await?.is_empty() {
            return Ok(());
        }
        let max_age = i64::try_from(self.factors.step_up_max_age.as_secs()).unwrap_or(i64::MAX);
        match caller {
            Caller::User(u) if u.second_factor_within(max_age, now().timestamp()) => Ok(()),
            _ => Err(Error::FailedPrecondition(
                "this change needs a recent sign-in with your second factor: sign in again",
            )),
        }
    }

    /// The user `id`, unless deleted.
    pub(super) async fn live_user(&self, id: Uuid) -> Result<crate::store::UserRecord, Error> {
        self.store.get(id).await?.ok_or(Error::NotFound)
    }

    fn open(&self, factor: &FactorRecord) -> Result<Vec<u8>, Error> {
        let sealer = self
            .factors
            .sealer
            .as_ref()
            .ok_or(Error::FailedPrecondition(
                "second factors are off: the service has no FACTOR_KEY",
            ))?;
        sealer
            .open(factor.user_id, factor.id, &factor.secret)
            .map_err(|e| Error::Internal(format!("factor {}: {e}", factor.id)))
    }

    /// Deletes enrolments never confirmed.
    pub(super) async fn prune_factors(&self) -> Result<u64, Error> {
        let before = now() - chrono::Duration::from_std(UNCONFIRMED_TTL).unwrap_or_default();
        Ok(self.factors.store.prune_unconfirmed(before).await?)
    }
}

pub(super) fn codes_generated(user: Uuid) -> Event {
    Event::new(
        &RecoveryCodesGenerated {
            user_id: user.to_string(),
        },
        user,
    )
}

pub(super) fn hashes(user: Uuid, codes: &[String]) -> Vec<Vec<u8>> {
    codes
        .iter()
        .filter_map(|c| factors::canonical_code(c))
        .map(|c| factors::code_hash(user, &c))
        .collect()
}

fn parse_id(text: &str, field: &str) -> Result<Uuid, Error> {
    Uuid::parse_str(text).map_err(|_| Error::invalid(field, "must be an id (a UUID)"))
}

/// A factor's name: default, trimmed, at most 64 visible characters.
fn factor_name(name: &str) -> Result<String, Error> {
    factor_name_or(name, "Authenticator app")
}

/// A factor's name: `default` when empty, trimmed, at most 64 characters
/// with no control characters.
pub(super) fn factor_name_or(name: &str, default: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(default.to_owned());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(Error::invalid("name", "must be at most 64 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::invalid("name", "must not hold control characters"));
    }
    Ok(name.to_owned())
}

/// Counts a second factor's check (`suite_user_second_factor_checks_total`).
fn count_check(purpose: &'static str, outcome: &'static str) {
    crate::metrics::count_second_factor(purpose, outcome);
}
