//! Password reset by mail: a request answered alike (and after the same
//! time) whether or not the login names an account, a single-use link valid
//! for minutes and bound to the password it would replace, and the reset
//! itself through the password policy, ending every session.

use super::{
    UserCore,
    email::{Link, addressee},
};
use crate::{
    domain::{NewPassword, Violations},
    error::Error,
    mail::{
        letters::lifetime_in_words,
        links::{self, Purpose},
    },
    store::Also,
};
use std::time::Duration;
use suite_events::Event;
use suite_proto::{
    Login, Password,
    time::now,
    user::{PasswordResetCompleted, PasswordResetRequested},
};
use uuid::Uuid;

/// A reset request is answered no sooner than this after it arrived,
/// whatever it found: the work for an account (a token and a letter
/// written) and for nobody (a look-up) take different times, and the
/// difference must not tell whether the account exists.
pub const RESET_REQUEST_ANSWER_AFTER: Duration = Duration::from_millis(250);

impl UserCore {
    /// Mails a reset link to the account `login` names, if any and if its
    /// hour's link mails allow; the same answer in every case.
    pub async fn request_password_reset(&self, login: &str) -> Result<(), Error> {
        let started = tokio::time::Instant::now();
        let Ok(login) = Login::parse(login) else {
            return Err(Error::invalid(
                "login",
                "is required: an email address or a username",
            ));
        };
        let outcome = self.reset_request(&login).await;
        tokio::time::sleep_until(started + RESET_REQUEST_ANSWER_AFTER).await;
        let outcome = outcome?;
        crate::metrics::count_reset_request(outcome);
        Ok(())
    }

    /// What a reset request did: `mailed`, `unknown` or `limited`.
    async fn reset_request(&self, login: &Login) -> Result<&'static str, Error> {
        let Some(record) = self.store.find_by_login(login.as_str()).await? else {
            tracing::info!("password reset asked for no account");
            return Ok("unknown");
        };
        let id = record.id;
        if !self.within_link_budget(id, record.email.as_str()).await? {
            tracing::info!(user.id = %id, "password reset not mailed: this hour's links are spent");
            return Ok("limited");
        }
        let ttl = self.mail.reset_ttl;
        let (secret, token) = links::issue(
            Purpose::ResetPassword,
            id,
            record.email.as_str(),
            links::password_binding(&record.password_hash),
            now(),
            ttl,
        );
        let letter = self.mail.letters.password_reset(
            &addressee(&record, record.email.as_str()),
            &secret,
            &lifetime_in_words(ttl),
        );
        let requested = Event::new(
            &PasswordResetRequested {
                user_id: id.to_string(),
            },
            id,
        );
        self.mail_links(id, vec![requested], vec![Link { letter, token }])
            .await?;
        Ok("mailed")
    }

    /// Sets the password of the reset link's user: checked by the policy,
    /// every session ended, the user told. The user.
    pub async fn reset_password(&self, secret: &str, new: Option<Password>) -> Result<Uuid, Error> {
        let spent = || Error::LinkSpent;
        let hash = links::parse(secret);
        let new_password = match (NewPassword::parse(new), &hash) {
            (Ok(p), Some(_)) => p,
            (p, _) => {
                let mut v = Violations::default();
                if hash.is_none() {
                    v.add("token", super::email::MALFORMED_TOKEN);
                }
                v.note("new_password", &p);
                return Err(v.into_error());
            }
        };
        let hash = hash.ok_or_else(spent)?;
        let token = self.store.find_token(&hash).await?.ok_or_else(spent)?;
        if token.purpose != Purpose::ResetPassword
            || token.used_at.is_some()
            || token.expires_at <= now()
        {
            return Err(spent());
        }
        let mut record = self.store.get(token.user_id).await?.ok_or_else(spent)?;
        // The password it would replace is still the user's: a change in
        // any other way since the mail killed the link.
        if links::password_binding(&record.password_hash) != token.bound {
            return Err(spent());
        }
        let id = record.id;
        // The link went to the address: following it proves the address.
        if record.email.as_str() == token.email {
            record.email_verified = true;
        }
        let (changed, letters) = self.set_password(&mut record, new_password).await?;
        let events = vec![
            changed,
            Event::new(
                &PasswordResetCompleted {
                    user_id: id.to_string(),
                },
                id,
            ),
        ];
        let also = Also {
            letters: &letters,
            redeems: Some(&hash),
            ..Also::default()
        };
        self.save_with(&mut record, &self.recorded(events), &also)
            .await?;
        tracing::info!(user.id = %id, "password reset");
        Ok(id)
    }
}
