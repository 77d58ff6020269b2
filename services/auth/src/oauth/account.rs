//! The provider's side of the gateway's account pages (`/account`): who
//! the browser session is, as a short-lived access token the gateway acts
//! with; a sign-in for the pages, through the provider's own first-party
//! client and the authorization flow's pages and forms (a second factor
//! asked for again when a change needs a recent one); and signing a user
//! out everywhere.

use super::{
    OAuthCore,
    authorize::{AuthorizeParams, MFA_ACR, Next},
    hash, random_token,
    store::{ClientRecord, ClientSettings},
};
use crate::{core::account::SignedIn, error::Error};
use suite_events::Event;
use suite_proto::{
    auth::{ClientCreated, ClientUpdated, RevocationReason},
    time::now,
};
use uuid::Uuid;

/// The provider's own client for the account pages' sign-in.
pub const ACCOUNT_CLIENT_ID: &str = "suite-account";
/// Its name, as the sign-in page shows it ("to continue to ...").
const ACCOUNT_CLIENT_NAME: &str = "your account";
/// Where its sign-in ends, under PUBLIC_URL: the gateway's account pages.
pub const SIGNED_IN_PATH: &str = "/account/signed-in";

/// An account page's token, and who it is for.
#[derive(Debug)]
pub struct AccountToken {
    pub access_token: String,
    pub expires_in: i64,
    pub user_id: Uuid,
    pub username: String,
    pub amr: Vec<String>,
}

/// What signing out everywhere ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignedOut {
    pub sessions: usize,
    pub browser_sessions: u64,
}

impl OAuthCore {
    /// The account pages' token for the browser session `cookie` names, if
    /// it is live (as for an authorization: not ended, expired or idle, and
    /// signed in after the user's sessions were last cut off).
    pub async fn account_token(&self, cookie: &str) -> Result<Option<AccountToken>, Error> {
        // Before the session and its user are read: a token dated from
        // then is refused by a cut-off that lands meanwhile.
        let now = now();
        let Some(session) = self.browser_session(cookie, now).await? else {
            return Ok(None);
        };
        let (access_token, expires_in) = self.auth.account_token(
            SignedIn {
                user_id: session.user_id,
                browser_session: session.id,
                amr: &session.amr,
                auth_time: session.auth_time,
            },
            now,
        )?;
        Ok(Some(AccountToken {
            access_token,
            expires_in,
            user_id: session.user_id,
            username: session.username,
            amr: session.amr,
        }))
    }

    /// A sign-in for the account pages: an authorization request of the
    /// account client, which shows the sign-in page (or, signed in already
    /// as asked, sends the browser back). Its code is never redeemed: the
    /// PKCE challenge is random (nobody knows a verifier for it) and the
    /// client's secret was never told, so the code is only the end of the
    /// flow. `second_factor` signs in again with one, however recent the
    /// browser's sign-in.
    pub async fn account_sign_in(
        &self,
        cookie: &str,
        binding: &str,
        second_factor: bool,
    ) -> Result<Next, Error> {
        let client = self.account_client().await?;
        let params = AuthorizeParams {
            client_id: client.client_id.clone(),
            redirect_uri: account_redirect_uri(self.oidc_issuer()),
            response_type: "code".into(),
            scope: "openid".into(),
            code_challenge: random_token()?,
            code_challenge_method: "S256".into(),
            prompt: if second_factor { "login" } else { "" }.into(),
            acr_values: if second_factor { MFA_ACR } else { "" }.into(),
            ..AuthorizeParams::default()
        };
        self.authorize(params, cookie, binding).await
    }

    /// Ends every session of `user_id` begun until now: the refresh
    /// sessions (each with its event, which revokes its access tokens and
    /// owes its client a back-channel logout) and the browser sessions.
    pub async fn sign_out_everywhere(&self, user_id: Uuid) -> Result<SignedOut, Error> {
        let now = now();
        // A session begun in this very millisecond (the caller's own, at
        // worst) ends too; one begun after this call lives on.
        let before = now + chrono::Duration::milliseconds(1);
        let sessions = self
            .auth
            .end_user_sessions(user_id, before, RevocationReason::ByUser)
            .await?;
        let browser_sessions = self.store.forget_user(user_id, before, now, false).await?;
        tracing::info!(user.id = %user_id, sessions, browser_sessions, "signed out everywhere");
        Ok(SignedOut {
            sessions,
            browser_sessions,
        })
    }

    /// The account client as it must be: registered on first need, and put
    /// back if an operator changed it (or PUBLIC_URL moved).
    async fn account_client(&self) -> Result<ClientRecord, Error> {
        let settings = account_settings(self.oidc_issuer());
        let now = now();
        if let Some(mut client) = self.store.get_client(ACCOUNT_CLIENT_ID).await? {
            if client.settings == settings && client.name == ACCOUNT_CLIENT_NAME {
                return Ok(client);
            }
            client.name = ACCOUNT_CLIENT_NAME.to_owned();
            client.settings = settings;
            client.updated_at = now;
            let updated = Event::new(
                &ClientUpdated {
                    client_id: client.client_id.clone(),
                    changed_fields: vec!["*".into()],
                },
                client.id,
            );
            if self.store.update_client(&client, &[updated]).await? {
                self.auth.wake();
                tracing::info!(
                    client.id = ACCOUNT_CLIENT_ID,
                    "the account client was put back"
                );
            }
            return Ok(client);
        }
        let client = ClientRecord {
            id: Uuid::now_v7(),
            client_id: ACCOUNT_CLIENT_ID.to_owned(),
            name: ACCOUNT_CLIENT_NAME.to_owned(),
            confidential: true,
            settings,
            // A secret nobody is told: the client never uses the token endpoint.
            secret_hash: Some(hash(&random_token()?)),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            created_at: now,
            updated_at: now,
        };
        let created = Event::new(
            &ClientCreated {
                client_id: client.client_id.clone(),
                name: client.name.clone(),
            },
            client.id,
        );
        if self.store.create_client(&client, &[created]).await? {
            self.auth.wake();
            tracing::info!(
                client.id = ACCOUNT_CLIENT_ID,
                "the account client was registered"
            );
            return Ok(client);
        }
        // Another replica registered it first.
        self.store
            .get_client(ACCOUNT_CLIENT_ID)
            .await?
            .ok_or_else(|| Error::Internal("the account client vanished".into()))
    }
}

/// The account client's redirect URI under the issuer.
fn account_redirect_uri(issuer: &str) -> String {
    format!("{}{SIGNED_IN_PATH}", issuer.trim_end_matches('/'))
}

/// The account client's settings: first-party (never a consent page), the
/// code flow only, `openid` only, back to the account pages.
fn account_settings(issuer: &str) -> ClientSettings {
    ClientSettings {
        redirect_uris: vec![account_redirect_uri(issuer)],
        post_logout_redirect_uris: Vec::new(),
        grant_types: vec!["authorization_code".into()],
        scopes: vec!["openid".into()],
        first_party: true,
        backchannel_logout_uri: String::new(),
        id_token_alg: "RS256".into(),
        access_token_ttl_secs: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_client_signs_in_to_the_account_pages_only() {
        let s = account_settings("https://id.example/");
        assert_eq!(s.redirect_uris, ["https://id.example/account/signed-in"]);
        assert_eq!(s.grant_types, ["authorization_code"]);
        assert_eq!(s.scopes, ["openid"]);
        assert!(s.first_party);
        assert!(s.post_logout_redirect_uris.is_empty());
    }
}
