//! The authorization endpoint's steps: checking a request (never redirecting
//! to a URI the client did not register), the sign-in and consent pages'
//! forms (each tied to the browser that started the request and carrying a
//! CSRF token), browser sessions for single sign-on, and codes.

use super::{
    OAuthCore, OAuthFail,
    clients::redirect_matches,
    describe_scope, hash, random_token, same,
    store::{
        BrowserSession, ClientRecord, CodeGrant, CodeRecord, ConsentRecord, PendingRequest,
        RequestParams,
    },
};
use crate::error::Error;
use chrono::{DateTime, Utc};
use suite_events::Event;
use suite_proto::{auth::ConsentGranted, time::now};
use uuid::Uuid;

mod parameters;
mod sign_in;
use parameters::parse_prompt;
pub use parameters::pkce_shaped;
pub use sign_in::{FactorForm, PasskeyForm, SignInForm};

/// How long a pending request waits for its forms.
const REQUEST_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// How long a code may wait to be exchanged.
const CODE_TTL: chrono::Duration = chrono::Duration::seconds(60);
const MAX_STATE_CHARS: usize = 2000;
const MAX_NONCE_CHARS: usize = 512;
const MAX_HINT_CHARS: usize = 254;
/// The `acr` value of a sign-in with a second factor (`acr_values=mfa`
/// asks for one); a password alone is `pwd`.
pub const MFA_ACR: &str = "mfa";

/// An authorization request's parameters, as the browser sent them.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub client_id: String,
    pub redirect_uri: String,
    pub response_type: String,
    pub scope: String,
    pub state: String,
    pub nonce: String,
    pub code_challenge: String,
    pub code_challenge_method: String,
    pub prompt: String,
    pub max_age: String,
    pub login_hint: String,
    pub response_mode: String,
    pub request_object: bool,
    /// `acr_values`: `mfa` asks for a second factor.
    pub acr_values: String,
}

/// The sign-in page's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignInPage {
    pub request_id: String,
    pub csrf_token: String,
    pub client_name: String,
    pub login_hint: String,
    pub error: String,
    pub error_field: String,
    pub retry_after_secs: i64,
    /// Set when the password was right and a second factor is asked for.
    pub factor_challenge: String,
    /// A passwordless passkey ceremony for the page (first step only).
    pub passkey_ceremony: String,
    /// The options of the page's passkey ceremony (JSON); empty: none.
    pub passkey_options_json: String,
}

/// The consent page's contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentPage {
    pub request_id: String,
    pub csrf_token: String,
    pub client_name: String,
    pub scopes: Vec<(String, &'static str)>,
    pub username: String,
    /// A device request's user code, to compare with the device's.
    pub user_code: String,
}

/// What the browser sees next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A 302 to the client's (registered) redirect URI.
    Redirect(String),
    SignIn(SignInPage),
    Consent(ConsentPage),
    /// An error page; nowhere to redirect to.
    Error(OAuthFail),
    /// A device request was allowed or denied: the page that says so.
    Device {
        client_name: String,
        approved: bool,
    },
}

/// A step, with the browser session cookie to set or clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Next {
    pub step: Step,
    /// (value, max-age in seconds).
    pub set_session: Option<(String, i64)>,
    pub clear_session: bool,
}

impl Next {
    fn show(step: Step) -> Self {
        Self {
            step,
            set_session: None,
            clear_session: false,
        }
    }
}

fn error_page(error: &'static str, description: &str) -> Next {
    Next::show(Step::Error(OAuthFail::new(error, description)))
}

/// `uri` with `pairs` added to its query.
fn with_query(uri: &str, pairs: &[(&str, &str)]) -> Result<String, Error> {
    let mut url = url::Url::parse(uri).map_err(|e| Error::Internal(e.to_string()))?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
    }
    Ok(url.to_string())
}

impl OAuthCore {
    /// Checks an authorization request and says what the browser sees next.
    pub async fn authorize(
        &self,
        p: AuthorizeParams,
        browser_session: &str,
        binding: &str,
    ) -> Result<Next, Error> {
        // Until the client and its redirect URI are known good, errors are
        // pages: a redirect would send the browser somewhere untrusted.
        if p.client_id.is_empty() || p.client_id.len() > 64 {
            return Ok(error_page(
                "invalid_request",
                "client_id is missing or unknown",
            ));
        }
        let Some(client) = self.store.get_client(&p.client_id).await? else {
            return Ok(error_page(
                "invalid_request",
                "client_id is missing or unknown",
            ));
        };
        if p.redirect_uri.is_empty()
            || !client
                .settings
                .redirect_uris
                .iter()
                .any(|r| redirect_matches(r, &p.redirect_uri))
        {
            return Ok(error_page(
                "invalid_request",
                "redirect_uri is missing or not registered for this client",
            ));
        }
        let fail = |error: &'static str, description: &str| -> Result<Next, Error> {
            Ok(Next::show(Step::Redirect(with_query(
                &p.redirect_uri,
                &[
                    ("error", error),
                    ("error_description", description),
                    ("state", &p.state),
                    ("iss", self.oidc_issuer()),
                ],
            )?)))
        };
        if p.state.len() > MAX_STATE_CHARS {
            return Ok(error_page("invalid_request", "state is too long"));
        }
        if p.request_object {
            return fail("request_not_supported", "request objects are not supported");
        }
        if !(p.response_mode.is_empty() || p.response_mode == "query") {
            return fail("invalid_request", "response_mode must be query");
        }
        if p.response_type != "code" {
            return fail("unsupported_response_type", "response_type must be code");
        }
        if !client
            .settings
            .grant_types
            .iter()
            .any(|g| g == "authorization_code")
        {
            return fail(
                "unauthorized_client",
                "this client may not use the code flow",
            );
        }
        if p.code_challenge_method != "S256" {
            return fail(
                "invalid_request",
                "PKCE is required: code_challenge_method must be S256",
            );
        }
        if !pkce_shaped(&p.code_challenge) {
            return fail(
                "invalid_request",
                "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
            );
        }
        let scopes = suite_tokens::scope_list(&p.scope);
        if scopes.is_empty() {
            return fail("invalid_scope", "scope is required");
        }
        if let Some(s) = scopes.iter().find(|s| !client.settings.scopes.contains(s)) {
            return fail(
                "invalid_scope",
                &format!("{s:.64} is not allowed for this client"),
            );
        }
        let Some(prompt) = parse_prompt(&p.prompt) else {
            return fail("invalid_request", "prompt is not none, login or consent");
        };
        let max_age = match p.max_age.as_str() {
            "" => None,
            text => match text.parse::<u32>() {
                Ok(n) => Some(i64::from(n)),
                Err(_) => return fail("invalid_request", "max_age must be a number of seconds"),
            },
        };
        if p.nonce.len() > MAX_NONCE_CHARS || p.login_hint.len() > MAX_HINT_CHARS {
            return fail("invalid_request", "nonce or login_hint is too long");
        }
        let mut scopes_dedup = Vec::new();
        for s in scopes {
            if !scopes_dedup.contains(&s) {
                scopes_dedup.push(s);
            }
        }
        let params = RequestParams {
            redirect_uri: p.redirect_uri.clone(),
            scopes: scopes_dedup,
            state: p.state.clone(),
            nonce: p.nonce.clone(),
            code_challenge: p.code_challenge.clone(),
            prompt_consent: prompt.consent,
            login_hint: p.login_hint.clone(),
            require_mfa: suite_tokens::scope_list(&p.acr_values)
                .iter()
                .any(|v| v == MFA_ACR),
            ..RequestParams::default()
        };

        let now = now();
        let session = self.browser_session(browser_session, now).await?;
        let stale_cookie = !browser_session.is_empty() && session.is_none();
        // max_age=0 always signs in again, as prompt=login does.
        // A request for a second factor needs a sign-in that had one.
        let fresh_enough = |s: &BrowserSession| {
            max_age.is_none_or(|age| (now - s.auth_time).num_seconds() < age)
                && (!params.require_mfa || s.amr.iter().any(|m| m == "mfa"))
        };
        let session = match session {
            Some(s) if !prompt.login && fresh_enough(&s) => s,
            _ => {
                if prompt.none {
                    return fail("login_required", "the user is not signed in");
                }
                let request = self.pending(&client, params, binding, now).await?;
                let (passkey_ceremony, passkey_options_json) = self.passwordless(&request.id).await;
                return Ok(Next {
                    step: Step::SignIn(SignInPage {
                        request_id: request.id,
                        csrf_token: request.csrf_token,
                        client_name: client.name.clone(),
                        login_hint: p.login_hint.clone(),
                        passkey_ceremony,
                        passkey_options_json,
                        ..SignInPage::default()
                    }),
                    set_session: None,
                    clear_session: stale_cookie,
                });
            }
        };
        if self.needs_consent(&client, &session, &params).await? {
            if prompt.none {
                return fail("consent_required", "the user has not allowed this client");
            }
            let request = self.pending(&client, params, binding, now).await?;
            return Ok(Next::show(Step::Consent(consent_page(
                &request, &client, &session,
            ))));
        }
        let redirect = self.issue_code(&client, &params, &session, now).await?;
        Ok(Next::show(Step::Redirect(redirect)))
    }

    /// The consent form was posted.
    pub async fn consent(
        &self,
        request_id: &str,
        csrf_token: &str,
        binding: &str,
        browser_session: &str,
        allow: bool,
    ) -> Result<Next, Error> {
        let now = now();
        let (request, client) = match self
            .form_request(request_id, csrf_token, binding, now)
            .await?
        {
            Ok(found) => found,
            Err(page) => return Ok(page),
        };
        let Some(session) = self.browser_session(browser_session, now).await? else {
            // Signed out meanwhile: sign in again, same request.
            return Ok(Next {
                step: Step::SignIn(SignInPage {
                    request_id: request.id.clone(),
                    csrf_token: request.csrf_token.clone(),
                    client_name: client.name.clone(),
                    login_hint: request.params.login_hint.clone(),
                    ..SignInPage::default()
                }),
                set_session: None,
                clear_session: !browser_session.is_empty(),
            });
        };
        self.store.delete_request(&request.id).await?;
        let device = !request.params.device_code_hash.is_empty();
        if !allow {
            if device {
                return self
                    .decide_device(&request, &client, &session, false, now)
                    .await;
            }
            return Ok(Next::show(Step::Redirect(with_query(
                &request.params.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user did not allow it"),
                    ("state", &request.params.state),
                    ("iss", self.oidc_issuer()),
                ],
            )?)));
        }
        let earlier = self
            .store
            .get_consent(session.user_id, &client.client_id)
            .await?;
        let mut scopes = earlier
            .as_ref()
            .map(|c| c.scopes.clone())
            .unwrap_or_default();
        for s in &request.params.scopes {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let record = ConsentRecord {
            id: earlier.as_ref().map_or_else(Uuid::now_v7, |c| c.id),
            user_id: session.user_id,
            client_id: client.client_id.clone(),
            scopes: scopes.clone(),
            created_at: earlier.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
        };
        let granted = Event::new(
            &ConsentGranted {
                user_id: session.user_id.to_string(),
                client_id: client.client_id.clone(),
                scopes,
            },
            session.user_id,
        );
        self.store.put_consent(&record, &[granted]).await?;
        self.auth.wake();
        if device {
            return self
                .decide_device(&request, &client, &session, true, now)
                .await;
        }
        let redirect = self
            .issue_code(&client, &request.params, &session, now)
            .await?;
        Ok(Next::show(Step::Redirect(redirect)))
    }

    /// The browser session a cookie names, if it is live (and its user's
    /// sessions were not cut off since); its last use is now.
    pub(crate) async fn browser_session(
        &self,
        cookie: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<BrowserSession>, Error> {
        if cookie.is_empty() || cookie.len() > 128 {
            return Ok(None);
        }
        let Some(s) = self.store.find_browser_session(&hash(cookie)).await? else {
            return Ok(None);
        };
        let idle = chrono::Duration::from_std(self.auth.settings().idle_timeout)
            .unwrap_or(chrono::Duration::MAX);
        if s.revoked_at.is_some() || s.expires_at <= now || s.last_used_at + idle <= now {
            return Ok(None);
        }
        // Deleted, or the password changed after this sign-in.
        match self.auth.users().status(s.user_id).await? {
            Some(status)
                if status
                    .sessions_valid_after
                    .is_none_or(|cut| s.auth_time >= cut) => {}
            _ => return Ok(None),
        }
        self.store.touch_browser_session(s.id, now).await?;
        Ok(Some(s))
    }

    /// The pending request a form names, if the form's CSRF token and the
    /// browser's binding are its own; else the error page to show.
    async fn form_request(
        &self,
        request_id: &str,
        csrf_token: &str,
        binding: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(PendingRequest, ClientRecord), Next>, Error> {
        let expired = || {
            error_page(
                "invalid_request",
                "this sign-in has expired or is unknown: start again from the application",
            )
        };
        if request_id.is_empty() || request_id.len() > 64 {
            return Ok(Err(expired()));
        }
        let Some(request) = self.store.get_request(request_id).await? else {
            return Ok(Err(expired()));
        };
        if request.expires_at <= now {
            return Ok(Err(expired()));
        }
        // Both compared in constant time, both checked whatever the first
        // says.
        let csrf_ok = same(&request.csrf_token, csrf_token);
        let binding_ok = !binding.is_empty() && same(&request.binding_hash, &hash(binding));
        if !(csrf_ok & binding_ok) {
            tracing::warn!(
                security_event = "oauth_form_forgery",
                "a form's CSRF token or browser binding did not match"
            );
            return Ok(Err(error_page(
                "invalid_request",
                "this form does not belong to this browser: start again from the application",
            )));
        }
        let Some(client) = self.store.get_client(&request.client_id).await? else {
            return Ok(Err(expired()));
        };
        Ok(Ok((request, client)))
    }

    /// Stores a pending request tied to the browser's binding.
    async fn pending(
        &self,
        client: &ClientRecord,
        params: RequestParams,
        binding: &str,
        now: DateTime<Utc>,
    ) -> Result<PendingRequest, Error> {
        self.pending_until(client, params, binding, now, now + REQUEST_TTL)
            .await
    }

    /// Stores a pending request tied to the browser's binding, waiting
    /// for its forms until `expires_at` at the latest.
    pub(super) async fn pending_until(
        &self,
        client: &ClientRecord,
        params: RequestParams,
        binding: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<PendingRequest, Error> {
        if binding.is_empty() || binding.len() > 128 {
            return Err(Error::invalid(
                "browser_binding",
                "is required (the gateway's binding cookie)",
            ));
        }
        let request = PendingRequest {
            id: random_token()?,
            binding_hash: hash(binding),
            csrf_token: random_token()?,
            client_id: client.client_id.clone(),
            params,
            expires_at: expires_at.min(now + REQUEST_TTL),
        };
        self.store.create_request(&request).await?;
        Ok(request)
    }

    /// Whether the user must be asked before `client` gets `params.scopes`.
    async fn needs_consent(
        &self,
        client: &ClientRecord,
        session: &BrowserSession,
        params: &RequestParams,
    ) -> Result<bool, Error> {
        // A device is always confirmed, code shown (RFC 8628 §5.4): the
        // user may have been sent here to allow someone else's device.
        if !params.device_code_hash.is_empty() {
            return Ok(true);
        }
        if client.settings.first_party {
            return Ok(false);
        }
        if params.prompt_consent {
            return Ok(true);
        }
        let consent = self
            .store
            .get_consent(session.user_id, &client.client_id)
            .await?;
        Ok(!consent.is_some_and(|c| params.scopes.iter().all(|s| c.scopes.contains(s))))
    }

    /// A code for the request, and the redirect that carries it.
    async fn issue_code(
        &self,
        client: &ClientRecord,
        params: &RequestParams,
        session: &BrowserSession,
        now: DateTime<Utc>,
    ) -> Result<String, Error> {
        let code = random_token()?;
        self.store
            .create_code(&CodeRecord {
                code_hash: hash(&code),
                client_id: client.client_id.clone(),
                user_id: session.user_id,
                grant: CodeGrant {
                    redirect_uri: params.redirect_uri.clone(),
                    code_challenge: params.code_challenge.clone(),
                    scopes: params.scopes.clone(),
                    nonce: params.nonce.clone(),
                    auth_time: session.auth_time.timestamp(),
                    browser_session_id: session.id,
                    amr: session.amr.clone(),
                },
                expires_at: now + CODE_TTL,
                used_at: None,
                session_id: None,
            })
            .await?;
        with_query(
            &params.redirect_uri,
            &[
                ("code", &code),
                ("state", &params.state),
                ("iss", self.oidc_issuer()),
            ],
        )
    }
}

pub(super) fn consent_page(
    request: &PendingRequest,
    client: &ClientRecord,
    session: &BrowserSession,
) -> ConsentPage {
    ConsentPage {
        request_id: request.id.clone(),
        csrf_token: request.csrf_token.clone(),
        client_name: client.name.clone(),
        scopes: request
            .params
            .scopes
            .iter()
            .map(|s| (s.clone(), describe_scope(s)))
            .collect(),
        username: session.username.clone(),
        user_code: request.params.user_code.clone(),
    }
}
