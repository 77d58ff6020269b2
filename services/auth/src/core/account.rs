//! The access tokens of the gateway's account pages: first-party, short,
//! minted for the user of a live browser session, never given to the
//! browser. They say how and when that session signed in (`amr`,
//! `auth_time`), so the step-up rules judge them as any other token.

use super::{AuthCore, issue_id};
use crate::error::Error;
use chrono::{DateTime, Utc};
use std::time::Duration;
use suite_tokens::{Audience, Claims, roles};
use uuid::Uuid;

/// The longest an account page's token lives: one page's calls.
pub const ACCOUNT_TOKEN_TTL: Duration = Duration::from_secs(60);

/// The browser session an account token acts for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SignedIn<'a> {
    pub user_id: Uuid,
    /// The browser session's id: the token's `sid`.
    pub browser_session: Uuid,
    pub amr: &'a [String],
    pub auth_time: DateTime<Utc>,
}

impl AuthCore {
    /// An access token for the account pages' calls on behalf of
    /// `signed_in`, issued at `now` (taken before the browser session was
    /// checked, so that a cut-off landing meanwhile refuses it): the `user`
    /// role only (an admin's powers never ride on a browser cookie), and
    /// the seconds it lives.
    pub(crate) fn account_token(
        &self,
        signed_in: SignedIn<'_>,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), Error> {
        let ttl = ACCOUNT_TOKEN_TTL.min(self.settings.access_ttl).as_secs() as i64;
        let iat = now.timestamp();
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: Audience::One(self.settings.audience.clone()),
            sub: signed_in.user_id.to_string(),
            exp: iat + ttl,
            iat,
            nbf: iat,
            jti: issue_id(now).to_string(),
            sid: Some(signed_in.browser_session.to_string()),
            roles: vec![roles::USER.to_owned()],
            client_id: None,
            scope: None,
            amr: signed_in.amr.to_vec(),
            auth_time: Some(signed_in.auth_time.timestamp()),
            pat: false,
        };
        let token = self
            .keys
            .active()
            .sign(&claims)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Ok((token, ttl))
    }
}
