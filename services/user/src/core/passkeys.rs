//! Passkeys (WebAuthn, with webauthn-rs): registering them, and checking a
//! sign-in with one, as a second factor after the password or alone (a
//! discoverable credential names its user). Each ceremony's state is kept
//! in the database between its two calls: single use, five minutes, bound
//! to what began it.

use super::{
    UserCore,
    access::services_only,
    credentials::{CredentialCheck, SignInClient},
    factors::FactorCheck,
    view::UserStatus,
};
use crate::{
    domain::UserRef,
    error::Error,
    factors::{self, PASSKEY_KIND},
    store::factors::{CeremonyRecord, FactorRecord},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use suite_events::Event;
use suite_proto::{time::now, user::SecondFactorAdded};
use suite_tokens::Caller;
use uuid::Uuid;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, WebauthnError,
};

/// How long a ceremony waits for its second call.
const CEREMONY_TTL: chrono::Duration = chrono::Duration::minutes(5);
const REGISTER: &str = "register";
const AUTHENTICATE: &str = "authenticate";
const DISCOVER: &str = "discover";

/// What a passwordless passkey sign-in found.
pub enum PasskeySignIn {
    /// The passkey is the user's: their status, and its `amr` method.
    Valid(UserStatus, &'static str),
    /// Unknown, used or expired ceremony; a passkey nobody has; a bad or
    /// cloned assertion.
    Invalid,
    /// The user must verify their address first (REQUIRE_VERIFIED_EMAIL).
    EmailUnverified,
}

impl UserCore {
    /// Begins registering a passkey for the caller: the ceremony and the
    /// browser's options (JSON).
    pub async fn start_passkey_registration(
        &self,
        caller: &Caller,
        target: UserRef,
        name: &str,
    ) -> Result<(String, String), Error> {
        let id = target.resolve(caller, "user_id")?;
        self.only_self(caller, id)?;
        let name = factors_name(name, "Passkey")?;
        let webauthn = self.webauthn()?;
        let record = self.live_user(id).await?;
        self.require_step_up(caller, id).await?;
        let existing: Vec<_> = self
            .passkeys(id)
            .await?
            .iter()
            .map(|(_, p)| p.cred_id().clone())
            .collect();
        let display = record.greeting_name().to_owned();
        let (options, state) = webauthn
            .start_passkey_registration(id, record.username.as_str(), &display, Some(existing))
            .map_err(|e| Error::Internal(format!("webauthn: {e}")))?;
        let ceremony = self.ceremony(REGISTER, Some(id), "", &state, &name).await?;
        // A passkey that the browser can offer without a login first
        // (discoverable), where the authenticator can keep one: webauthn-rs
        // discourages it by default, which would rule out passwordless
        // sign-in. Only the browser reads this hint; the ceremony's state
        // does not depend on it.
        let mut options =
            serde_json::to_value(&options).map_err(|e| Error::Internal(e.to_string()))?;
        if let Some(selection) = options
            .pointer_mut("/publicKey/authenticatorSelection")
            .and_then(serde_json::Value::as_object_mut)
        {
            selection.insert("residentKey".into(), "preferred".into());
        }
        Ok((ceremony, to_json(&options)?))
    }

    /// Finishes the caller's passkey registration with the browser's
    /// credential: the factor, and the recovery codes if it is the first.
    pub async fn finish_passkey_registration(
        &self,
        caller: &Caller,
        target: UserRef,
        ceremony: &str,
        credential_json: &str,
    ) -> Result<(FactorRecord, Vec<String>), Error> {
        let id = target.resolve(caller, "user_id")?;
        self.only_self(caller, id)?;
        let webauthn = self.webauthn()?;
        let credential: RegisterPublicKeyCredential = serde_json::from_str(credential_json)
            .map_err(|_| {
                Error::invalid("credential_json", "is not a WebAuthn credential (JSON)")
            })?;
        let taken = self.take(ceremony, "").await?;
        let Some(taken) = taken.filter(|c| c.purpose == REGISTER && c.user_id == Some(id)) else {
            return Err(Error::invalid(
                "ceremony",
                "is unknown, used or expired: start again",
            ));
        };
        let state: PasskeyRegistration = from_json(&taken.state)?;
        let passkey = webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| {
                tracing::info!(user.id = %id, error = %e, "a passkey registration was refused");
                Error::invalid("credential_json", "was not accepted for this ceremony")
            })?;
        let first = self.second_factors(id).await?.is_empty();
        let at = now();
        let factor = FactorRecord {
            id: Uuid::now_v7(),
            user_id: id,
            kind: PASSKEY_KIND.to_owned(),
            name: taken.name,
            secret: serde_json::to_vec(&passkey).map_err(|e| Error::Internal(e.to_string()))?,
            created_at: at,
            confirmed_at: Some(at),
            last_used_at: None,
            last_step: 0,
            credential_id: Some(passkey.cred_id().to_vec()),
        };
        let codes = if first {
            factors::new_recovery_codes()
        } else {
            Vec::new()
        };
        let hashes = super::factors::hashes(id, &codes);
        let mut events = vec![Event::new(
            &SecondFactorAdded {
                user_id: id.to_string(),
                factor_id: factor.id.to_string(),
                kind: factor.kind.clone(),
            },
            id,
        )];
        if first {
            events.push(super::factors::codes_generated(id));
        }
        let added = self
            .factors
            .store
            .add_confirmed(
                &factor,
                first.then_some(hashes.as_slice()),
                &self.recorded(events),
            )
            .await?;
        if !added {
            return Err(Error::AlreadyExists("this passkey is registered already"));
        }
        self.events.wake();
        tracing::info!(user.id = %id, factor.id = %factor.id, "passkey added");
        Ok((factor, codes))
    }

    /// Renames the caller's factor `factor_id`.
    pub async fn rename_factor(
        &self,
        caller: &Caller,
        target: UserRef,
        factor_id: &str,
        name: &str,
    ) -> Result<FactorRecord, Error> {
        let id = target.resolve(caller, "user_id")?;
        self.only_self(caller, id)?;
        let factor_id = Uuid::parse_str(factor_id)
            .map_err(|_| Error::invalid("factor_id", "must be an id (a UUID)"))?;
        if name.trim().is_empty() {
            return Err(Error::invalid("name", "is required"));
        }
        let name = factors_name(name, "")?;
        if !self.factors.store.rename(id, factor_id, &name).await? {
            return Err(Error::NotFound);
        }
        self.factors
            .store
            .list(id)
            .await?
            .into_iter()
            .find(|f| f.id == factor_id)
            .ok_or(Error::NotFound)
    }

    /// Begins a passkey sign-in bound to `binding`: for `user`'s passkeys,
    /// or (no user) for any discoverable one. The ceremony and the
    /// browser's options (JSON).
    pub async fn start_passkey_authentication(
        &self,
        caller: &Caller,
        user: &str,
        binding: &str,
    ) -> Result<(String, String), Error> {
        services_only(caller, "only services may begin passkey sign-ins")?;
        if binding.is_empty() || binding.len() > 256 {
            return Err(Error::invalid(
                "binding",
                "is required (at most 256 characters)",
            ));
        }
        let webauthn = self.webauthn()?;
        if user.is_empty() {
            let (options, state) = webauthn
                .start_discoverable_authentication()
                .map_err(|e| Error::Internal(format!("webauthn: {e}")))?;
            let ceremony = self.ceremony(DISCOVER, None, binding, &state, "").await?;
            return Ok((ceremony, to_json(&options)?));
        }
        let id = Uuid::parse_str(user)
            .map_err(|_| Error::invalid("user_id", "must be a user id (a UUID)"))?;
        let passkeys: Vec<Passkey> = self
            .passkeys(id)
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if passkeys.is_empty() {
            return Err(Error::FailedPrecondition("the user has no passkey"));
        }
        let (options, state) = webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(|e| Error::Internal(format!("webauthn: {e}")))?;
        let ceremony = self
            .ceremony(AUTHENTICATE, Some(id), binding, &state, "")
            .await?;
        Ok((ceremony, to_json(&options)?))
    }

    /// A second factor's passkey assertion for `id`'s ceremony (after the
    /// throttle let it through): its `amr` method if it is good.
    pub(super) async fn check_passkey(
        &self,
        id: Uuid,
        ceremony: &str,
        binding: &str,
        assertion_json: &str,
    ) -> Result<FactorCheck, Error> {
        let webauthn = self.webauthn()?;
        let Ok(assertion) = serde_json::from_str::<PublicKeyCredential>(assertion_json) else {
            return Ok(FactorCheck::Invalid);
        };
        let taken = self.take(ceremony, binding).await?;
        let Some(taken) = taken.filter(|c| c.purpose == AUTHENTICATE && c.user_id == Some(id))
        else {
            return Ok(FactorCheck::Invalid);
        };
        let state: PasskeyAuthentication = from_json(&taken.state)?;
        match webauthn.finish_passkey_authentication(&assertion, &state) {
            Ok(result) => Ok(match self.passkey_used(id, &result).await? {
                Some(method) => FactorCheck::Valid(method),
                None => FactorCheck::Invalid,
            }),
            Err(e) => {
                refused(id, &e);
                Ok(FactorCheck::Invalid)
            }
        }
    }

    /// A passwordless sign-in with a discoverable passkey.
    pub async fn verify_passkey(
        &self,
        caller: &Caller,
        ceremony: &str,
        binding: &str,
        assertion_json: &str,
        client: &SignInClient,
    ) -> Result<PasskeySignIn, Error> {
        services_only(caller, "only services may verify passkeys")?;
        let webauthn = self.webauthn()?;
        let Ok(assertion) = serde_json::from_str::<PublicKeyCredential>(assertion_json) else {
            return Ok(PasskeySignIn::Invalid);
        };
        let Some(taken) = self
            .take(ceremony, binding)
            .await?
            .filter(|c| c.purpose == DISCOVER)
        else {
            return Ok(PasskeySignIn::Invalid);
        };
        let state: DiscoverableAuthentication = from_json(&taken.state)?;
        let Ok((user, credential_id)) = webauthn.identify_discoverable_authentication(&assertion)
        else {
            return Ok(PasskeySignIn::Invalid);
        };
        let Some(record) = self.store.get(user).await? else {
            return Ok(PasskeySignIn::Invalid);
        };
        let passkeys = self.passkeys(user).await?;
        let Some((_, passkey)) = passkeys
            .iter()
            .find(|(_, p)| p.cred_id().as_slice() == credential_id)
        else {
            return Ok(PasskeySignIn::Invalid);
        };
        let key = DiscoverableKey::from(passkey);
        let result = match webauthn.finish_discoverable_authentication(&assertion, state, &[key]) {
            Ok(result) => result,
            Err(e) => {
                refused(user, &e);
                crate::metrics::count_second_factor("passkey_sign_in", "invalid");
                return Ok(PasskeySignIn::Invalid);
            }
        };
        let Some(method) = self.passkey_used(user, &result).await? else {
            return Ok(PasskeySignIn::Invalid);
        };
        crate::metrics::count_second_factor("passkey_sign_in", "valid");
        Ok(match self.admit(UserStatus::of(record), client).await? {
            CredentialCheck::Valid(status) => PasskeySignIn::Valid(status, method),
            CredentialCheck::EmailUnverified => PasskeySignIn::EmailUnverified,
            CredentialCheck::Invalid | CredentialCheck::Locked(_) => PasskeySignIn::Invalid,
        })
    }

    /// Records a passkey's use (its new counter): the `amr` method, or
    /// `None` if the user has no such passkey (any more).
    async fn passkey_used(
        &self,
        user: Uuid,
        result: &webauthn_rs::prelude::AuthenticationResult,
    ) -> Result<Option<&'static str>, Error> {
        let Some((factor, mut passkey)) = self
            .passkeys(user)
            .await?
            .into_iter()
            .find(|(_, p)| p.cred_id() == result.cred_id())
        else {
            return Ok(None);
        };
        passkey.update_credential(result);
        let stored = serde_json::to_vec(&passkey).map_err(|e| Error::Internal(e.to_string()))?;
        self.factors
            .store
            .update_secret(factor.id, &stored, now())
            .await?;
        // A passkey that may be synced between devices is a software key;
        // one bound to its authenticator, a hardware key (RFC 8176).
        Ok(Some(if result.backup_eligible() {
            "swk"
        } else {
            "hwk"
        }))
    }

    /// `user`'s passkeys, with their factors.
    async fn passkeys(&self, user: Uuid) -> Result<Vec<(FactorRecord, Passkey)>, Error> {
        self.factors
            .store
            .list(user)
            .await?
            .into_iter()
            .filter(|f| f.kind == PASSKEY_KIND && f.confirmed_at.is_some())
            .map(|f| {
                let passkey = serde_json::from_slice(&f.secret)
                    .map_err(|e| Error::Internal(format!("passkey {}: {e}", f.id)))?;
                Ok((f, passkey))
            })
            .collect()
    }

    /// Stores a ceremony's state: its token.
    async fn ceremony<T: serde::Serialize>(
        &self,
        purpose: &str,
        user: Option<Uuid>,
        binding: &str,
        state: &T,
        name: &str,
    ) -> Result<String, Error> {
        let mut raw = [0u8; 32];
        crate::password::fill_random(&mut raw);
        let token = URL_SAFE_NO_PAD.encode(raw);
        let at = now();
        self.factors
            .store
            .create_ceremony(&CeremonyRecord {
                hash: token_hash(&token),
                purpose: purpose.to_owned(),
                user_id: user,
                binding: binding.to_owned(),
                state: to_json(state)?,
                name: name.to_owned(),
                created_at: at,
                expires_at: at + CEREMONY_TTL,
            })
            .await?;
        Ok(token)
    }

    /// Takes the ceremony `token` (once), if `binding` is the one it began with.
    async fn take(&self, token: &str, binding: &str) -> Result<Option<CeremonyRecord>, Error> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        Ok(self
            .factors
            .store
            .take_ceremony(&token_hash(token), binding, now())
            .await?)
    }

    fn webauthn(&self) -> Result<&webauthn_rs::Webauthn, Error> {
        self.factors
            .webauthn
            .as_deref()
            .ok_or(Error::FailedPrecondition(
                "passkeys are off: the service has no WebAuthn relying party (WEBAUTHN_RP_ID, PUBLIC_URL)",
            ))
    }
}

/// Logs why an assertion was refused; a counter that went backwards is a
/// cloned authenticator, refused by policy.
fn refused(user: Uuid, e: &WebauthnError) {
    if matches!(e, WebauthnError::CredentialPossibleCompromise) {
        tracing::warn!(user.id = %user, security_event = "passkey_cloned",
            "a passkey's signature counter went backwards: a cloned authenticator? refused");
    } else {
        tracing::info!(user.id = %user, error = %e, "a passkey assertion was refused");
    }
}

fn token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Internal(e.to_string()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::Internal(format!("a ceremony's state: {e}")))
}

/// A factor's name: `default` when empty, trimmed, at most 64 characters
/// with no control characters.
fn factors_name(name: &str, default: &str) -> Result<String, Error> {
    super::factors::factor_name_or(name, default)
}
