//! Passwords: changing one, the auth service's credential check (counted by
//! the throttle, hashed on the hashing threads, shared by identical checks
//! in flight), and the operators' lookup by login.

use super::email::addressee;
use super::{
    UserCore,
    access::{Access, authorize, operators_only, services_only},
    view::{UserStatus, Visibility, view},
};
use crate::{
    coalesce::Role,
    domain::{NewPassword, UserRef, Violations},
    error::Error,
    password::PasswordCheck,
    throttle::Account,
};
use crate::{mail::letters::Addressee, store::Also};
use sha2::{Digest, Sha256};
use std::time::Duration;
use suite_events::Event;
use suite_proto::{
    Login, Password,
    time::{now, to_timestamp},
    user::{EmailVerificationRequested, PasswordChanged, User},
};

/// Where a sign-in's password came from.
#[derive(Debug, Clone, Default)]
pub struct SignInClient {
    /// The client's address (the throttle counts per account and address).
    pub address: String,
    /// Its User-Agent (a new one is told by mail).
    pub user_agent: String,
}

impl SignInClient {
    /// What is remembered of the client: a digest, so the table holds no
    /// User-Agent strings.
    fn digest(&self, user: uuid::Uuid) -> String {
        let d = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update(self.user_agent.trim().as_bytes())
            .finalize();
        d.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }
}
use suite_tokens::Caller;

/// What a credential check found.
#[derive(Debug, Clone)]
pub enum CredentialCheck {
    /// The password is the user's.
    Valid(UserStatus),
    /// A wrong password, an unknown user and an impossible password alike.
    Invalid,
    /// The account is locked for this long: the password was not checked.
    Locked(Duration),
    /// The password is right but sign-in waits for the email address to be
    /// verified (a new link was mailed, if the hour's budget allowed).
    EmailUnverified,
}

impl UserCore {
    /// Changes `target`'s password to `new`. Acting on oneself needs the
    /// `current` password (checked and counted like a login's, from
    /// `client_address`); an operator resetting someone else's does not.
    /// An empty field is `None`.
    pub async fn change_password(
        &self,
        caller: &Caller,
        target: UserRef,
        current: Option<Password>,
        new: Option<Password>,
        client_address: &str,
    ) -> Result<(), Error> {
        let id = target.resolve(caller, "id")?;
        authorize(caller, id, Access::Write)?;
        let acting_on_self = caller.user_id() == Some(id);
        let (new_password, current) = match (NewPassword::parse(new), current) {
            (Ok(p), current) if !(acting_on_self && current.is_none()) => (p, current),
            (p, current) => {
                let mut v = Violations::default();
                v.note("new_password", &p);
                if acting_on_self && current.is_none() {
                    v.add("current_password", "is required");
                }
                return Err(v.into_error());
            }
        };

        let mut record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        if acting_on_self {
            self.require_step_up(caller, id).await?;
        }
        // An admin resetting someone else's password need not know it. The
        // user's own check is a password guess like a login's (a stolen
        // access token must not make it an unthrottled oracle): counted
        // against the same counters.
        if acting_on_self && let Some(current) = current {
            let reservation = self
                .throttle
                .reserve(Account::User(id), client_address)
                .await?;
            let checked = self
                .hasher
                .verify(current, Some(record.password_hash.clone()))
                .await?;
            if let PasswordCheck::Wrong(failure) = checked {
                self.throttle.fail(reservation).await;
                // The account's turn is given back: the floor's wait holds
                // nothing another check of it needs.
                self.hasher.pad(failure).await?;
                return Err(Error::invalid(
                    "current_password",
                    "is not the user's current password",
                ));
            }
            self.throttle.release(reservation).await?;
        }
        let (changed, letters) = self.set_password(&mut record, new_password).await?;
        let also = Also {
            letters: &letters,
            ..Also::default()
        };
        self.save_with(&mut record, &self.recorded(vec![changed]), &also)
            .await?;
        tracing::info!(user.id = %id, "password changed");
        Ok(())
    }

    /// Gives `record` the hash of `new` (through the password policy, on the
    /// hashing threads) and ends its older sessions: the `PasswordChanged`
    /// event to store with it, and the notice to mail (if notices are on).
    pub(super) async fn set_password(
        &self,
        record: &mut crate::store::UserRecord,
        new: crate::domain::NewPassword,
    ) -> Result<(Event, Vec<crate::mail::letters::Letter>), Error> {
        let related = related_inputs(
            record.username.as_str(),
            record.email.as_str(),
            record.display_name.as_str(),
        );
        record.password_hash = self
            .hasher
            .hash_new(new.into_password(), related, "new_password")
            .await?;
        let at = now();
        record.updated_at = at;
        // Sessions begun before now end: a changed password logs out other devices.
        record.sessions_valid_after = Some(at);
        let changed = Event::new(
            &PasswordChanged {
                user_id: record.id.to_string(),
                sessions_valid_after: Some(to_timestamp(at)),
            },
            record.id,
        );
        let mut letters = Vec::new();
        if self.mail.notice_password_changed {
            letters.push(
                self.mail
                    .letters
                    .password_changed(&addressee(record, record.email.as_str())),
            );
        }
        Ok((changed, letters))
    }

    /// Whether `password` is the password of the user `login` names, for
    /// the auth service's login; counted by the throttle per account and
    /// `client_address`.
    pub async fn verify_credentials(
        &self,
        caller: &Caller,
        login: Login,
        password: Password,
        client: &SignInClient,
    ) -> Result<CredentialCheck, Error> {
        services_only(caller, "only services may verify credentials")?;
        let client_address = client.address.as_str();
        // No stored password is this long (or this short); refusing it first
        // costs no hashing, whatever the user, so it reveals nothing.
        if NewPassword::parse(Some(password.clone())).is_err() {
            return Ok(CredentialCheck::Invalid);
        }
        let address = client_address.trim();
        let lead = match self
            .same_checks
            .join(&[
                login.as_str().as_bytes(),
                address.as_bytes(),
                password.expose().as_bytes(),
            ])
            .await
        {
            Role::Shared(answer) => {
                crate::metrics::count_password_check("shared");
                return Ok(answer);
            }
            Role::Lead(lead) => lead,
        };
        let answer = self.check_credentials(&login, address, password).await;
        lead.finish(answer.as_ref().ok().cloned());
        match answer? {
            CredentialCheck::Valid(status) => self.admit(status, client).await,
            other => Ok(other),
        }
    }

    /// What a right password leads to: a sign-in (told by mail if from a
    /// client the user has not signed in with before), or, while sign-in
    /// waits for a verified address, a new verification link.
    pub(super) async fn admit(
        &self,
        status: UserStatus,
        client: &SignInClient,
    ) -> Result<CredentialCheck, Error> {
        if self.mail.require_verified_email && !status.email_verified {
            let record = self.store.get(status.id).await?.ok_or(Error::NotFound)?;
            if self
                .within_link_budget(record.id, record.email.as_str())
                .await?
            {
                let link = self.verification_link(&record, now());
                let requested = Event::new(
                    &EmailVerificationRequested {
                        user_id: record.id.to_string(),
                    },
                    record.id,
                );
                self.mail_links(record.id, vec![requested], vec![link])
                    .await?;
            }
            return Ok(CredentialCheck::EmailUnverified);
        }
        if self.mail.notice_new_sign_in && !client.user_agent.is_empty() {
            // A notice that cannot be written does not stop the sign-in.
            if let Err(e) = self.note_client(&status, client).await {
                tracing::warn!(error = %e, "recording a sign-in's client failed");
            }
        }
        Ok(CredentialCheck::Valid(status))
    }

    /// Remembers `client` for the user, with a notice if it is new and the
    /// user signed in before (an account's first sign-in is not news).
    async fn note_client(&self, status: &UserStatus, client: &SignInClient) -> Result<(), Error> {
        let digest = client.digest(status.id);
        let (known, any) = self.store.knows_client(status.id, &digest).await?;
        if known {
            return Ok(());
        }
        let mut letters = Vec::new();
        if any {
            let to = Addressee {
                email: &status.email,
                name: &status.name,
            };
            letters.push(
                self.mail
                    .letters
                    .new_sign_in(&to, &client.user_agent, &client.address),
            );
        }
        let also = Also {
            letters: &letters,
            known_client: Some((status.id, &digest)),
            ..Also::default()
        };
        self.store.append_events(&[], &also).await?;
        if !letters.is_empty() {
            self.mail.wake.wake();
        }
        Ok(())
    }

    /// The credential check itself: counted by the throttle, then hashed.
    async fn check_credentials(
        &self,
        login: &Login,
        address: &str,
        password: Password,
    ) -> Result<CredentialCheck, Error> {
        let record = self
            .throttle
            .database(self.store.find_by_login(login.as_str()))
            .await??;
        // Counted per account (its username and email are one), or per login
        // name for nobody's, before the hash: concurrent guesses cannot all
        // slip past the lock.
        let account = match &record {
            Some(r) => Account::User(r.id),
            None => Account::Unknown(login),
        };
        let reservation = match self.throttle.reserve(account, address).await {
            Ok(reservation) => reservation,
            Err(Error::Throttled(wait)) => return Ok(CredentialCheck::Locked(wait)),
            Err(e) => return Err(e),
        };
        let stored = record.as_ref().map(|r| r.password_hash.clone());
        match self.hasher.verify(password, stored.clone()).await? {
            PasswordCheck::Wrong(failure) => {
                self.throttle.fail(reservation).await;
                // After the turn is given back (so a storm of wrong passwords
                // on one account is not slowed to one floor at a time), and
                // before the answer goes to identical checks in flight.
                self.hasher.pad(failure).await?;
                Ok(CredentialCheck::Invalid)
            }
            PasswordCheck::Right { rehash } => {
                let (Some(record), Some(old)) = (record, stored) else {
                    self.throttle.fail(reservation).await;
                    return Ok(CredentialCheck::Invalid);
                };
                self.throttle.release(reservation).await?;
                if let Some(new) = rehash {
                    let replaced = self
                        .throttle
                        .database(self.store.replace_hash(record.id, &old, &new))
                        .await;
                    if let Err(e) = replaced.and_then(|r| r.map_err(Error::from)) {
                        tracing::warn!(error = %e, "upgrading a password hash failed; will retry next login");
                    }
                }
                Ok(CredentialCheck::Valid(UserStatus::of(record)))
            }
        }
    }

    /// A live user by username or email (any case), for operators.
    pub async fn lookup(&self, caller: &Caller, login: &Login) -> Result<User, Error> {
        operators_only(
            caller,
            "only admins and the operator's suitectl may look users up",
        )?;
        let record = self
            .store
            .find_by_login(login.as_str())
            .await?
            .ok_or(Error::NotFound)?;
        Ok(view(&record, Visibility::Full))
    }

    /// A user's roles and session cut-off, for the auth service's refresh.
    pub async fn status(&self, caller: &Caller, user_id: &str) -> Result<UserStatus, Error> {
        services_only(caller, "only services may read user status")?;
        let id = uuid::Uuid::parse_str(user_id)
            .map_err(|_| Error::invalid("user_id", "must be a user id (a UUID)"))?;
        let record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        Ok(UserStatus::of(record))
    }
}

/// Inputs a password must not be built from.
pub(super) fn related_inputs(username: &str, email: &str, display_name: &str) -> Vec<String> {
    let mut v = vec![username.to_owned(), email.to_owned()];
    if let Some((local, _)) = email.split_once('@') {
        v.push(local.to_owned());
    }
    v.extend(display_name.split_whitespace().map(str::to_lowercase));
    v
}
