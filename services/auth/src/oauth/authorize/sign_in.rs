//! The sign-in page's two forms: the password, and, for a user who has a
//! second factor, a code of it (with the challenge the first form opened,
//! tied to the same pending request). Either ends in a browser session and
//! the consent page or a code.

use super::{
    super::{OAuthCore, hash, random_token},
    MAX_HINT_CHARS, Next, SignInPage, Step, consent_page,
};
use crate::{
    core::{
        ClientInfo, Proof,
        second_factor::{Refusal, amr_with, passkey_amr},
    },
    error::Error,
    oauth::store::{BrowserSession, ClientRecord, PendingRequest},
    user_client::Credentials,
    user_client::{PasskeyAnswer, PasskeyCheck},
};
use chrono::{DateTime, Utc};
use suite_proto::{Login, Password, parse_credentials, time::now};
use uuid::Uuid;

/// The sign-in form, as posted (no `Debug`: it holds a password).
pub struct SignInForm {
    pub request_id: String,
    pub csrf_token: String,
    /// The browser's binding cookie.
    pub binding: String,
    pub login: String,
    pub password: String,
    /// Where the browser is, for the password throttle.
    pub ip_address: String,
    /// The browser's User-Agent (a new one is told to the user by mail).
    pub user_agent: String,
}

/// The second-factor form, as posted (no `Debug`: it holds a code).
pub struct FactorForm {
    pub request_id: String,
    pub csrf_token: String,
    pub binding: String,
    /// The challenge the password form opened.
    pub challenge: String,
    pub code: String,
    /// Instead of a code: a passkey's assertion (JSON).
    pub passkey_assertion: String,
    pub ip_address: String,
    pub user_agent: String,
}

/// The passkey form of the sign-in page's first step (passwordless).
pub struct PasskeyForm {
    pub request_id: String,
    pub csrf_token: String,
    pub binding: String,
    /// The page's ceremony.
    pub ceremony: String,
    /// The passkey's assertion (JSON).
    pub assertion: String,
    pub ip_address: String,
    pub user_agent: String,
}

/// The sign-in page of `request` with `error` (about `field`).
fn page(
    request: &PendingRequest,
    client: &ClientRecord,
    login_hint: &str,
    error: &str,
    field: &str,
    retry: i64,
    factor_challenge: &str,
) -> Next {
    Next::show(Step::SignIn(SignInPage {
        request_id: request.id.clone(),
        csrf_token: request.csrf_token.clone(),
        client_name: client.name.clone(),
        login_hint: login_hint.chars().take(MAX_HINT_CHARS).collect(),
        error: error.to_owned(),
        error_field: field.to_owned(),
        retry_after_secs: retry,
        factor_challenge: factor_challenge.to_owned(),
        ..SignInPage::default()
    }))
}

fn locked_message(wait: std::time::Duration) -> (String, i64) {
    let secs = wait.as_secs().max(1);
    (
        format!("too many failed sign-ins: try again in {secs} seconds"),
        i64::try_from(secs).unwrap_or(i64::MAX),
    )
}

impl OAuthCore {
    /// The sign-in form was posted.
    pub async fn sign_in(&self, form: SignInForm) -> Result<Next, Error> {
        let SignInForm {
            request_id,
            csrf_token,
            binding,
            login,
            password,
            ip_address,
            user_agent,
        } = form;
        let now = now();
        let (request, client) = match self
            .form_request(&request_id, &csrf_token, &binding, now)
            .await?
        {
            Ok(found) => found,
            Err(page) => return Ok(page),
        };
        let show = |error: &str, field: &str, retry: i64| {
            page(&request, &client, &login, error, field, retry, "")
        };
        let (login_name, password): (Login, Password) = match parse_credentials(&login, password) {
            Ok(parsed) => parsed,
            Err(bad) => {
                let field = bad.first().map_or("", |(f, _)| *f);
                return Ok(show("enter your login and password", field, 0));
            }
        };
        let user = match self
            .auth
            .check_password(&login_name, &password, &ip_address, &user_agent)
            .await?
        {
            Credentials::Valid(user) => user,
            Credentials::Invalid => return Ok(show("wrong login or password", "", 0)),
            Credentials::EmailUnverified => {
                return Ok(show(
                    "confirm your email address first: follow the link we mailed you (a new one is on its way)",
                    "",
                    0,
                ));
            }
            Credentials::Locked(wait) => {
                let (message, retry) = locked_message(wait);
                return Ok(show(&message, "", retry));
            }
        };
        if !user.second_factors.is_empty() {
            let client_info = ClientInfo {
                user_agent,
                ip_address,
            };
            let challenge = self
                .auth
                .challenge(&user, &request.id, &client_info)
                .await?;
            let mut next = page(&request, &client, &login, "", "", 0, &challenge.challenge);
            if let Step::SignIn(p) = &mut next.step {
                p.passkey_options_json = challenge.passkey_options;
            }
            return Ok(next);
        }
        if request.params.require_mfa {
            return Ok(show(
                "this application asks for a second factor: set one up in your account, then sign in again",
                "",
                0,
            ));
        }
        self.signed_in(
            &request,
            &client,
            user.id,
            &user.username,
            vec!["pwd".into()],
            now,
        )
        .await
    }

    /// The second-factor form was posted.
    pub async fn sign_in_factor(&self, form: FactorForm) -> Result<Next, Error> {
        let now = now();
        let (request, client) = match self
            .form_request(&form.request_id, &form.csrf_token, &form.binding, now)
            .await?
        {
            Ok(found) => found,
            Err(page) => return Ok(page),
        };
        let hint = request.params.login_hint.clone();
        let proof = Proof {
            code: &form.code,
            passkey_assertion: &form.passkey_assertion,
        };
        let taken = self
            .auth
            .take_challenge(&form.challenge, &request.id, proof, &form.ip_address)
            .await?;
        let (record, method) = match taken {
            Ok(taken) => taken,
            Err(Refusal::WrongCode) => {
                return Ok(page(
                    &request,
                    &client,
                    &hint,
                    "wrong or used code: try the next one",
                    "code",
                    0,
                    &form.challenge,
                ));
            }
            Err(Refusal::Locked(wait)) => {
                let (message, retry) = locked_message(wait);
                return Ok(page(
                    &request,
                    &client,
                    &hint,
                    &message,
                    "code",
                    retry,
                    &form.challenge,
                ));
            }
            Err(Refusal::Unknown) => {
                return Ok(page(
                    &request,
                    &client,
                    &hint,
                    "this sign-in expired: enter your password again",
                    "",
                    0,
                    "",
                ));
            }
        };
        let Some(status) = self.auth.users().status(record.user_id).await? else {
            return Ok(page(
                &request,
                &client,
                &hint,
                "wrong login or password",
                "",
                0,
                "",
            ));
        };
        let amr = suite_tokens::scope_list(&amr_with(&method));
        self.signed_in(&request, &client, status.id, &status.username, amr, now)
            .await
    }

    /// The sign-in page's passkey was used (passwordless).
    pub async fn sign_in_passkey(&self, form: PasskeyForm) -> Result<Next, Error> {
        let now = now();
        let (request, client) = match self
            .form_request(&form.request_id, &form.csrf_token, &form.binding, now)
            .await?
        {
            Ok(found) => found,
            Err(page) => return Ok(page),
        };
        let binding = passwordless_binding(&request.id);
        let answer = PasskeyAnswer {
            ceremony: &form.ceremony,
            binding: &binding,
            assertion_json: &form.assertion,
        };
        let verified = if form.ceremony.is_empty() || form.assertion.is_empty() {
            PasskeyCheck::Invalid
        } else {
            self.auth
                .users()
                .verify_passkey(answer, &form.ip_address)
                .await?
        };
        // A refusal shows the password form, without a passkey this time: a
        // browser that answers at once (an automated one) must not loop.
        let refusal = |why: &str| {
            page(
                &request,
                &client,
                &request.params.login_hint,
                why,
                "",
                0,
                "",
            )
        };
        let (user, method) = match verified {
            PasskeyCheck::Valid(user, method) => (user, method),
            PasskeyCheck::EmailUnverified => {
                return Ok(refusal(
                    "confirm your email address first: follow the link we mailed you (a new one is on its way)",
                ));
            }
            PasskeyCheck::Invalid => {
                tracing::info!("a passkey sign-in at the provider was refused");
                return Ok(refusal(
                    "the passkey was not accepted: sign in with your password",
                ));
            }
        };
        let amr = suite_tokens::scope_list(&passkey_amr(&method));
        self.signed_in(&request, &client, user.id, &user.username, amr, now)
            .await
    }

    /// A passwordless ceremony for the sign-in page of request `request_id`:
    /// its token and options, or nothing if passkeys are off or the user
    /// service cannot begin one now (the password still signs in).
    pub(in crate::oauth) async fn passwordless(&self, request_id: &str) -> (String, String) {
        match self
            .auth
            .users()
            .start_passkey(None, &passwordless_binding(request_id))
            .await
        {
            Ok(started) => started,
            Err(e) => {
                tracing::debug!(error = %e, "no passkey on the sign-in page");
                (String::new(), String::new())
            }
        }
    }

    /// A browser session for the user who just signed in by `amr`, and the
    /// request's next step: consent, or a code.
    async fn signed_in(
        &self,
        request: &PendingRequest,
        client: &ClientRecord,
        user_id: Uuid,
        username: &str,
        amr: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<Next, Error> {
        let secret = random_token()?;
        let settings = self.auth.settings();
        let lifetime =
            chrono::Duration::from_std(settings.max_lifetime).unwrap_or(chrono::Duration::MAX);
        let session = BrowserSession {
            id: Uuid::now_v7(),
            secret_hash: hash(&secret),
            user_id,
            username: username.to_owned(),
            auth_time: now,
            last_used_at: now,
            expires_at: now + lifetime,
            revoked_at: None,
            amr,
        };
        self.store.create_browser_session(&session).await?;
        tracing::info!(user.id = %user_id, client.id = %client.client_id, amr = ?session.amr, "signed in at the provider");
        let cookie = Some((secret, lifetime.num_seconds()));
        let step = if self
            .needs_consent(client, &session, &request.params)
            .await?
        {
            Step::Consent(consent_page(request, client, &session))
        } else {
            self.store.delete_request(&request.id).await?;
            Step::Redirect(
                self.issue_code(client, &request.params, &session, now)
                    .await?,
            )
        };
        Ok(Next {
            step,
            set_session: cookie,
            clear_session: false,
        })
    }
}

/// The binding of a sign-in page's passwordless ceremony: its pending
/// request (itself tied to the browser by the binding cookie and the
/// form's CSRF token).
fn passwordless_binding(request_id: &str) -> String {
    format!("request:{request_id}")
}
