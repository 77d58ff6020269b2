//! Email addresses people can prove: verification links, a change of
//! address confirmed from the new address (the old one told, with a link
//! that undoes it), and the undoing. Every link is a single-use token bound
//! to the state it proves; redeeming it and its change are one transaction.

use super::{
    UserCore,
    access::{Access, authorize},
    view::{Visibility, view},
};
use crate::{
    domain::{Email, UserRef},
    error::Error,
    mail::{
        letters::{Addressee, Letter, lifetime_in_words},
        links::{self, NewToken, Purpose, TokenRecord},
    },
    store::{Also, UserRecord},
};
use chrono::{DateTime, Utc};
use suite_events::Event;
use suite_proto::{
    time::{now, to_timestamp},
    user::{
        EmailChangeRequested, EmailChangeReverted, EmailVerificationRequested, EmailVerified, User,
        UserUpdated,
    },
};
use suite_tokens::Caller;
use uuid::Uuid;

/// Why a link token is refused: the same words whatever the reason, so
/// that a guess learns nothing (NotFound: the link is no more).
pub const SPENT_TOKEN: &str = "the link's token is not valid: unknown, used, expired, or for an address or password that changed since";

/// Why a token is refused before any look-up: not of a token's form.
pub const MALFORMED_TOKEN: &str =
    "must be the token of a mailed link (43 characters of A-Z, a-z, 0-9, - and _)";

/// The mail settings the core follows (see `mail::config::MailArgs`).
#[derive(Debug, Clone)]
pub struct MailPolicy {
    pub letters: crate::mail::letters::Letters,
    pub wake: crate::mail::mailer::MailWake,
    pub verify_on_registration: bool,
    pub require_verified_email: bool,
    pub verification_ttl: std::time::Duration,
    pub reset_ttl: std::time::Duration,
    pub revert_ttl: std::time::Duration,
    pub links_per_hour: i64,
    pub notice_password_changed: bool,
    pub notice_email_changed: bool,
    pub notice_new_sign_in: bool,
    pub notice_account_locked: bool,
}

/// Who a letter to `record` greets, at `email`.
pub(super) fn addressee<'a>(record: &'a UserRecord, email: &'a str) -> Addressee<'a> {
    Addressee {
        email,
        name: record.greeting_name(),
    }
}

/// A link's letter and its token, ready for `Also`.
pub(super) struct Link {
    pub letter: Letter,
    pub token: NewToken,
}

impl Link {
    /// The letters and the tokens of `links`, as `Also` holds them.
    pub(super) fn split(links: Vec<Link>) -> (Vec<Letter>, Vec<NewToken>) {
        links.into_iter().map(|l| (l.letter, l.token)).unzip()
    }
}

impl UserCore {
    /// The verification link of `record`'s current address.
    pub(super) fn verification_link(&self, record: &UserRecord, at: DateTime<Utc>) -> Link {
        let email = record.email.as_str();
        let ttl = self.mail.verification_ttl;
        let (secret, token) = links::issue(
            Purpose::VerifyEmail,
            record.id,
            email,
            email.to_owned(),
            at,
            ttl,
        );
        let letter = self.mail.letters.verify_email(
            &addressee(record, email),
            &secret,
            &lifetime_in_words(ttl),
        );
        Link { letter, token }
    }

    /// Whether `user` and `email` may have another link mail this hour.
    pub(super) async fn within_link_budget(&self, user: Uuid, email: &str) -> Result<bool, Error> {
        let hour_ago = now() - chrono::Duration::hours(1);
        let (account, address) = self.store.recent_links(user, email, hour_ago).await?;
        Ok(account < self.mail.links_per_hour && address < self.mail.links_per_hour)
    }

    /// Writes `events` with `links`' letters and tokens, and wakes the
    /// relay and the mailer.
    pub(super) async fn mail_links(
        &self,
        id: Uuid,
        events: Vec<Event>,
        links: Vec<Link>,
    ) -> Result<(), Error> {
        let (letters, tokens) = Link::split(links);
        let also = Also {
            letters: &letters,
            tokens: &tokens,
            ..Also::default()
        };
        self.store
            .append_events(&self.recorded(events), &also)
            .await?;
        self.events.wake();
        self.mail.wake.wake();
        tracing::info!(user.id = %id, "link mailed");
        Ok(())
    }

    /// Mails `target` a new link that verifies their address.
    pub async fn send_email_verification(
        &self,
        caller: &Caller,
        target: UserRef,
    ) -> Result<(), Error> {
        let id = target.resolve(caller, "id")?;
        authorize(caller, id, Access::Write)?;
        let record = self.store.get(id).await?.ok_or(Error::NotFound)?;
        if record.email_verified {
            return Err(Error::FailedPrecondition(
                "the email address is verified already",
            ));
        }
        if !self.within_link_budget(id, record.email.as_str()).await? {
            return Err(Error::ResourceExhausted(
                "enough mail went to this address this hour; follow the last link or try again later",
            ));
        }
        let link = self.verification_link(&record, now());
        let requested = Event::new(
            &EmailVerificationRequested {
                user_id: id.to_string(),
            },
            id,
        );
        self.mail_links(id, vec![requested], vec![link]).await
    }

    /// A user's own change of address: the new one must confirm first.
    /// `record.pending_email` is set; the link goes to the new address.
    pub(super) async fn request_email_change(
        &self,
        record: &mut UserRecord,
        new: Email,
        events: &mut Vec<Event>,
        links: &mut Vec<Link>,
    ) -> Result<(), Error> {
        if let Some(other) = self.store.find_by_login(new.as_str()).await?
            && other.id != record.id
        {
            return Err(Error::AlreadyExists("email"));
        }
        if !self.within_link_budget(record.id, new.as_str()).await? {
            return Err(Error::ResourceExhausted(
                "enough mail went to this address this hour; try again later",
            ));
        }
        let ttl = self.mail.verification_ttl;
        let (secret, token) = links::issue(
            Purpose::ChangeEmail,
            record.id,
            new.as_str(),
            record.email.as_str().to_owned(),
            now(),
            ttl,
        );
        let letter = self.mail.letters.confirm_new_email(
            &addressee(record, new.as_str()),
            &secret,
            &lifetime_in_words(ttl),
        );
        links.push(Link { letter, token });
        events.push(Event::new(
            &EmailChangeRequested {
                user_id: record.id.to_string(),
            },
            record.id,
        ));
        record.pending_email = Some(new);
        Ok(())
    }

    /// A stored token for one of `purposes`, unused and unexpired.
    async fn live_token(
        &self,
        secret: &str,
        purposes: &[Purpose],
    ) -> Result<(Vec<u8>, TokenRecord), Error> {
        let spent = || Error::LinkSpent;
        let hash = links::parse(secret).ok_or_else(|| Error::invalid("token", MALFORMED_TOKEN))?;
        let token = self.store.find_token(&hash).await?.ok_or_else(spent)?;
        if !purposes.contains(&token.purpose)
            || token.used_at.is_some()
            || token.expires_at <= now()
        {
            return Err(spent());
        }
        Ok((hash, token))
    }

    /// Redeems a verification or change-of-address link: the address it
    /// names is the user's and verified. The user and the address.
    pub async fn confirm_email(&self, secret: &str) -> Result<(Uuid, String), Error> {
        let spent = || Error::LinkSpent;
        let (hash, token) = self
            .live_token(secret, &[Purpose::VerifyEmail, Purpose::ChangeEmail])
            .await?;
        let mut record = self.store.get(token.user_id).await?.ok_or_else(spent)?;
        let id = record.id;
        let at = now();
        let mut events = Vec::new();
        let mut letters = Vec::new();
        let mut tokens = Vec::new();
        match token.purpose {
            Purpose::VerifyEmail => {
                if record.email.as_str() != token.bound {
                    return Err(spent());
                }
                record.email_verified = true;
                events.push(Event::new(
                    &EmailVerified {
                        user_id: id.to_string(),
                        changed: false,
                    },
                    id,
                ));
            }
            _ => {
                let pending = record.pending_email.as_ref().map(Email::as_str);
                if pending != Some(token.email.as_str()) || record.email.as_str() != token.bound {
                    return Err(spent());
                }
                let old = record.email.clone();
                record.email = Email::from_stored(token.email.clone());
                record.pending_email = None;
                record.email_verified = true;
                if self.mail.notice_email_changed {
                    let ttl = self.mail.revert_ttl;
                    let (secret, revert) = links::issue(
                        Purpose::RevertEmail,
                        id,
                        old.as_str(),
                        token.email.clone(),
                        at,
                        ttl,
                    );
                    letters.push(self.mail.letters.email_changed(
                        &addressee(&record, old.as_str()),
                        &token.email,
                        &secret,
                        &lifetime_in_words(ttl),
                    ));
                    tokens.push(revert);
                }
                events.push(self.updated_email_event(&record));
                events.push(Event::new(
                    &EmailVerified {
                        user_id: id.to_string(),
                        changed: true,
                    },
                    id,
                ));
            }
        }
        record.updated_at = at;
        let also = Also {
            letters: &letters,
            tokens: &tokens,
            redeems: Some(&hash),
            ..Also::default()
        };
        self.save_with(&mut record, &self.recorded(events), &also)
            .await?;
        tracing::info!(user.id = %id, "email address confirmed");
        Ok((id, record.email.as_str().to_owned()))
    }

    /// Redeems the link mailed to the old address after a change: the old
    /// address is the user's again and every session of the user ends.
    pub async fn revert_email_change(&self, secret: &str) -> Result<(Uuid, String), Error> {
        let spent = || Error::LinkSpent;
        let (hash, token) = self.live_token(secret, &[Purpose::RevertEmail]).await?;
        let mut record = self.store.get(token.user_id).await?.ok_or_else(spent)?;
        if record.email.as_str() != token.bound {
            return Err(spent());
        }
        let id = record.id;
        let at = now();
        record.email = Email::from_stored(token.email.clone());
        record.pending_email = None;
        record.email_verified = true;
        record.updated_at = at;
        // Whoever changed the address is signed out.
        record.sessions_valid_after = Some(at);
        let events = vec![
            self.updated_email_event(&record),
            Event::new(
                &EmailChangeReverted {
                    user_id: id.to_string(),
                    sessions_valid_after: Some(to_timestamp(at)),
                },
                id,
            ),
        ];
        let also = Also {
            redeems: Some(&hash),
            ..Also::default()
        };
        self.save_with(&mut record, &self.recorded(events), &also)
            .await?;
        tracing::info!(user.id = %id, "email change undone");
        Ok((id, record.email.as_str().to_owned()))
    }

    /// `UserUpdated` for a change of `record`'s email (as the save will store it).
    fn updated_email_event(&self, record: &UserRecord) -> Event {
        let mut after: User = view(record, Visibility::Full);
        after.etag = (record.version + 1).to_string();
        Event::new(
            &UserUpdated {
                user: Some(after),
                changed_fields: vec!["email".into()],
            },
            record.id,
        )
    }
}
