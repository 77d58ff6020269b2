//! The browser side of the authorize flow: `authorize` (GET and POST), the
//! sign-in form (and its second step, a second factor's code), the consent
//! form, RP-initiated logout, and the pages they show.
//! The auth service says what comes next ([`AuthorizationStep`]); this
//! module renders it: a 302, a page, the cookies. Every page carries a
//! strict policy (no script at all, no framing, forms only to this origin
//! and the redirect's, which a form's 302 needs).

use super::{
    Shared, Visit, cookies,
    form::{FormError, Params},
    render::{
        self, Answer, ConsentTemplate, DeviceDoneTemplate, SignInFactorTemplate, SignInTemplate,
        SignOutConfirmTemplate, SignedOutTemplate, chrome, error_page, origin, render,
    },
    respond,
};
use crate::{contract::routes::RateClass, http::problem::Problem};
use axum::{
    body::Bytes,
    extract::{FromRequest, Request, rejection::BytesRejection},
};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use std::net::IpAddr;
use suite_proto::auth::{
    AuthorizationParameters, AuthorizationStep, AuthorizeRequest, ConsentRequest,
    EndSessionRequest, SignInFactorRequest, SignInPage, SignInPasskeyRequest, SignInRequest,
    authorization_step, end_session_response,
};

/// The parameters of an endpoint that takes a request either way (OpenID
/// Connect Core §3.1.2.1): a GET's query, or a POST's form. Whether they
/// could be read is the handler's to answer, with its error page.
pub struct QueryOrForm(pub Result<Params, FormError>);

impl<S: Send + Sync> FromRequest<S> for QueryOrForm {
    type Rejection = BytesRejection;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.method() == Method::GET {
            let query = req.uri().query().unwrap_or_default();
            return Ok(Self(Params::parse(query.as_bytes())));
        }
        let headers = req.headers().clone();
        let body = Bytes::from_request(req, state).await?;
        Ok(Self(Params::from_body(&headers, &body)))
    }
}

/// The error page for a failed call (503 and `Retry-After` when the auth
/// service is unavailable), saying no more than the API's problem would.
pub(super) fn failed(oidc: &Shared, status: &tonic::Status) -> Answer {
    failed_call(oidc, "OAuthService", status)
}

/// [`failed`] for a call to `service` (the account pages call UserService).
pub(super) fn failed_call(oidc: &Shared, service: &str, status: &tonic::Status) -> Answer {
    tracing::info!(code = ?status.code(), "{service} call failed: {}", status.message());
    let problem = Problem::from_status(status);
    let retry = problem
        .headers
        .iter()
        .find(|(n, _)| n == header::RETRY_AFTER)
        .and_then(|(_, v)| v.to_str().ok()?.parse().ok());
    error_page(oidc, problem.status, "server_error", &problem.detail, retry)
}

/// The error page for parameters that could not be read. Before the
/// client is known there is no redirect to answer with.
fn unreadable(oidc: &Shared, e: &FormError) -> Answer {
    error_page(
        oidc,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &e.to_string(),
        None,
    )
}

/// A page request admitted to its bucket of `class` (over it, the error
/// page with the wait), with its parameters read: the client's address
/// and the parameters.
pub(super) async fn admit_params(
    visit: &Visit,
    class: RateClass,
    params: Result<Params, FormError>,
) -> Result<(IpAddr, Params), Answer> {
    let oidc = &visit.oidc;
    let client = visit.admit(class).await.map_err(|wait| {
        let secs = suite_grpc::status::whole_seconds(wait);
        error_page(
            oidc,
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "Too many requests from this address.",
            Some(secs),
        )
    })?;
    let params = params.map_err(|e| unreadable(oidc, &e))?;
    Ok((client, params))
}

/// The auth service's answer to `call`, or the error page of a failed one.
pub(super) async fn answer_of<T>(
    oidc: &Shared,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, Answer> {
    call.await
        .map(tonic::Response::into_inner)
        .map_err(|status| failed(oidc, &status))
}

/// A posted form of the authorization flow (sign-in, consent), admitted
/// to its bucket.
struct Posted {
    client: IpAddr,
    form: Params,
    /// The redirect origin the page was rendered with, re-checked as one:
    /// it only widens this answer's `form-action`, the auth service decides
    /// where a redirect goes.
    redirect_origin: Option<String>,
    /// The browser's binding, which the form's CSRF token is checked against.
    browser_binding: String,
}

impl Posted {
    async fn admit(visit: &Visit, class: RateClass, body: &[u8]) -> Result<Self, Answer> {
        let params = Params::from_body(&visit.headers, body);
        let (client, form) = admit_params(visit, class, params).await?;
        Ok(Self {
            client,
            redirect_origin: form.get("redirect_origin").and_then(origin),
            form,
            browser_binding: cookies::get(&visit.headers, cookies::BINDING).unwrap_or_default(),
        })
    }
}

/// The answer for an authorization step: a 302, a page, the cookies.
/// `login` pre-fills the sign-in form after a failed attempt.
pub(super) fn step_answer(
    oidc: &Shared,
    step: Option<AuthorizationStep>,
    redirect_origin: Option<String>,
    login: &str,
) -> Answer {
    let Some(step) = step else {
        return failed(
            oidc,
            &tonic::Status::internal("an empty authorization step"),
        );
    };
    let mut answer = match step.step {
        Some(authorization_step::Step::RedirectUri(uri)) => Answer::redirect(uri),
        Some(authorization_step::Step::SignIn(p)) => {
            sign_in_page(oidc, p, redirect_origin.clone(), login)
        }
        Some(authorization_step::Step::Consent(p)) => {
            let page = ConsentTemplate {
                chrome: chrome(oidc),
                request_id: p.request_id,
                csrf_token: p.csrf_token,
                redirect_origin: redirect_origin.clone().unwrap_or_default(),
                client_name: p.client_name,
                username: p.username,
                scopes: p.scopes,
                user_code: p.user_code,
            };
            render::page(StatusCode::OK, &page, redirect_origin)
        }
        Some(authorization_step::Step::Error(e)) => error_page(
            oidc,
            StatusCode::BAD_REQUEST,
            &e.error,
            &e.description,
            None,
        ),
        Some(authorization_step::Step::Device(d)) => {
            let page = DeviceDoneTemplate {
                chrome: chrome(oidc),
                client_name: d.client_name,
                approved: d.approved,
            };
            render::page(StatusCode::OK, &page, None)
        }
        None => failed(
            oidc,
            &tonic::Status::internal("an empty authorization step"),
        ),
    };
    if let Some(session) = step.set_session {
        match cookies::set(cookies::SESSION, &session.value, Some(session.max_age_secs)) {
            Some(c) => answer.cookies.push(c),
            None => tracing::error!("the browser session is no cookie value"),
        }
    } else if step.clear_session {
        answer.cookies.push(cookies::clear(cookies::SESSION));
    }
    answer
}

/// The sign-in page of a step: the password form, or (with a
/// `factor_challenge`) the second factor's form. Its error goes beside the
/// field it is about; a locked login is a 429 with the wait.
fn sign_in_page(
    oidc: &Shared,
    p: SignInPage,
    redirect_origin: Option<String>,
    login: &str,
) -> Answer {
    let retry = (p.retry_after_secs > 0).then_some(p.retry_after_secs);
    let mut error = (!p.error.is_empty()).then(|| p.error.clone());
    if let Some(secs) = retry {
        let wait = format!("Try again in {secs} seconds.");
        error = Some(match error {
            Some(e) => format!("{e} {wait}"),
            None => format!("Too many attempts. {wait}"),
        });
    }
    let scripts = !p.passkey_options_json.is_empty();
    let rendered = if p.factor_challenge.is_empty() {
        let (mut login_error, mut password_error, mut form_error) = (None, None, None);
        match p.error_field.as_str() {
            "login" => login_error = error,
            "password" => password_error = error,
            _ => form_error = error,
        }
        let prefill = if p.login_hint.is_empty() {
            login.to_owned()
        } else {
            p.login_hint
        };
        render(&SignInTemplate {
            chrome: chrome(oidc),
            request_id: p.request_id,
            csrf_token: p.csrf_token,
            redirect_origin: redirect_origin.clone().unwrap_or_default(),
            client_name: p.client_name,
            autofocus_password: !prefill.is_empty() && login_error.is_none(),
            login: prefill,
            login_error,
            password_error,
            form_error,
            sign_up_url: oidc.branding.sign_up_url.clone(),
            passkey_ceremony: p.passkey_ceremony,
            passkey_options: p.passkey_options_json,
        })
    } else {
        // One field: whatever went wrong is said beside it.
        render(&SignInFactorTemplate {
            chrome: chrome(oidc),
            request_id: p.request_id,
            csrf_token: p.csrf_token,
            redirect_origin: redirect_origin.clone().unwrap_or_default(),
            client_name: p.client_name,
            challenge: p.factor_challenge,
            code_error: error,
            passkey_options: p.passkey_options_json,
        })
    };
    match rendered {
        Ok(body) => {
            let status = if retry.is_some() {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::OK
            };
            let mut a = Answer::page(status, body, redirect_origin);
            a.retry_after = retry.and_then(|r| u64::try_from(r).ok());
            a.scripts = scripts;
            a
        }
        Err(a) => a,
    }
}

/// The browser's User-Agent, as the auth service keeps it (its first 512
/// characters).
fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect()
}

/// The browser's binding, and the `Set-Cookie` of a new one if it had none.
pub(super) fn binding(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    match cookies::get(headers, cookies::BINDING) {
        Some(b) => (b, None),
        None => match cookies::new_binding() {
            Some(b) => {
                let cookie = cookies::set(cookies::BINDING, &b, None);
                (b, cookie)
            }
            None => (String::new(), None),
        },
    }
}

/// The authorization request's parameters.
fn parameters(p: &Params) -> AuthorizationParameters {
    AuthorizationParameters {
        client_id: p.text("client_id"),
        redirect_uri: p.text("redirect_uri"),
        response_type: p.text("response_type"),
        scope: p.text("scope"),
        state: p.text("state"),
        nonce: p.text("nonce"),
        code_challenge: p.text("code_challenge"),
        code_challenge_method: p.text("code_challenge_method"),
        prompt: p.text("prompt"),
        max_age: p.text("max_age"),
        login_hint: p.text("login_hint"),
        response_mode: p.text("response_mode"),
        request_object: p.has("request") || p.has("request_uri"),
        acr_values: p.text("acr_values"),
    }
}

/// `GET /oauth2/authorize`, or `POST` (the request as a form).
pub async fn authorize(visit: Visit, QueryOrForm(params): QueryOrForm) -> Answer {
    respond(async {
        let (client, params) = admit_params(&visit, RateClass::General, params).await?;
        let (binding, new_binding) = binding(&visit.headers);
        let redirect_origin = params.get("redirect_uri").and_then(origin);
        let request = AuthorizeRequest {
            parameters: Some(parameters(&params)),
            browser_session: session(&visit.headers),
            browser_binding: binding,
        };
        let oidc = &visit.oidc;
        let mut answer =
            match answer_of(oidc, oidc.client().authorize(oidc.request(request, client))).await {
                Ok(a) => step_answer(oidc, a.step, redirect_origin, ""),
                Err(a) => a,
            };
        answer.cookies.extend(new_binding);
        Ok(answer)
    })
    .await
}

/// The browser's session cookie (empty when it has none).
pub(super) fn session(headers: &HeaderMap) -> String {
    cookies::get(headers, cookies::SESSION).unwrap_or_default()
}

/// `POST /oauth2/signin`: the sign-in form.
pub async fn sign_in(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let posted = Posted::admit(&visit, RateClass::General, &body).await?;
        let login = posted.form.text("login");
        let request = SignInRequest {
            request_id: posted.form.text("request_id"),
            csrf_token: posted.form.text("csrf_token"),
            browser_binding: posted.browser_binding,
            login: login.clone(),
            password: posted.form.text("password"),
            user_agent: user_agent(&visit.headers),
        };
        let oidc = &visit.oidc;
        let answer = answer_of(
            oidc,
            oidc.client().sign_in(oidc.request(request, posted.client)),
        )
        .await?;
        Ok(step_answer(
            oidc,
            answer.step,
            posted.redirect_origin,
            &login,
        ))
    })
    .await
}

/// `POST /oauth2/signin/factor`: the sign-in page's second step, a code of
/// the user's second factor with the first step's challenge. In the strict
/// bucket: a six-digit code is what a guesser would hammer.
pub async fn sign_in_factor(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let posted = Posted::admit(&visit, RateClass::Auth, &body).await?;
        let request = SignInFactorRequest {
            request_id: posted.form.text("request_id"),
            csrf_token: posted.form.text("csrf_token"),
            browser_binding: posted.browser_binding,
            challenge: posted.form.text("challenge"),
            code: posted.form.text("code"),
            user_agent: user_agent(&visit.headers),
            passkey_assertion_json: posted.form.text("passkey_assertion"),
        };
        let oidc = &visit.oidc;
        let answer = answer_of(
            oidc,
            oidc.client()
                .sign_in_factor(oidc.request(request, posted.client)),
        )
        .await?;
        Ok(step_answer(oidc, answer.step, posted.redirect_origin, ""))
    })
    .await
}

/// `POST /oauth2/signin/passkey`: the sign-in page's passkey (passwordless),
/// its assertion for the page's ceremony. In the strict bucket, as codes.
pub async fn sign_in_passkey(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let posted = Posted::admit(&visit, RateClass::Auth, &body).await?;
        let request = SignInPasskeyRequest {
            request_id: posted.form.text("request_id"),
            csrf_token: posted.form.text("csrf_token"),
            browser_binding: posted.browser_binding,
            ceremony: posted.form.text("ceremony"),
            assertion_json: posted.form.text("assertion"),
            user_agent: user_agent(&visit.headers),
        };
        let oidc = &visit.oidc;
        let answer = answer_of(
            oidc,
            oidc.client()
                .sign_in_passkey(oidc.request(request, posted.client)),
        )
        .await?;
        Ok(step_answer(oidc, answer.step, posted.redirect_origin, ""))
    })
    .await
}

/// `GET /oauth2/assets/passkey.js`: the pages' one script (passkeys).
pub async fn passkey_script() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [
            (http::header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (http::header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/passkey.js"),
    )
        .into_response()
}

/// `POST /oauth2/consent`: the consent form.
pub async fn consent(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let posted = Posted::admit(&visit, RateClass::General, &body).await?;
        let request = ConsentRequest {
            request_id: posted.form.text("request_id"),
            csrf_token: posted.form.text("csrf_token"),
            browser_binding: posted.browser_binding,
            browser_session: session(&visit.headers),
            allow: posted.form.get("decision") == Some("allow"),
        };
        let oidc = &visit.oidc;
        let answer = answer_of(
            oidc,
            oidc.client().consent(oidc.request(request, posted.client)),
        )
        .await?;
        Ok(step_answer(oidc, answer.step, posted.redirect_origin, ""))
    })
    .await
}

/// `GET /oauth2/logout`, or `POST` (from a relying party, or the
/// confirmation form).
pub async fn logout(visit: Visit, QueryOrForm(params): QueryOrForm) -> Answer {
    respond(async {
        let (client, params) = admit_params(&visit, RateClass::General, params).await?;
        let (binding, new_binding) = binding(&visit.headers);
        let request = EndSessionRequest {
            id_token_hint: params.text("id_token_hint"),
            client_id: params.text("client_id"),
            post_logout_redirect_uri: params.text("post_logout_redirect_uri"),
            state: params.text("state"),
            browser_session: session(&visit.headers),
            browser_binding: binding,
            confirmed: params.get("confirmed") == Some("true"),
            csrf_token: params.text("csrf_token"),
        };
        let redirect_origin = params.get("post_logout_redirect_uri").and_then(origin);
        let oidc = &visit.oidc;
        let answer = answer_of(
            oidc,
            oidc.client()
                .end_session(oidc.request(request.clone(), client)),
        )
        .await?;
        let mut page = match answer.result {
            Some(end_session_response::Result::RedirectUri(uri)) => Answer::redirect(uri),
            Some(end_session_response::Result::SignedOut(_)) => render::page(
                StatusCode::OK,
                &SignedOutTemplate {
                    chrome: chrome(oidc),
                },
                None,
            ),
            Some(end_session_response::Result::Confirm(c)) => {
                let page = SignOutConfirmTemplate {
                    chrome: chrome(oidc),
                    csrf_token: c.csrf_token,
                    client_name: c.client_name,
                    username: c.username,
                    id_token_hint: request.id_token_hint,
                    client_id: request.client_id,
                    post_logout_redirect_uri: request.post_logout_redirect_uri,
                    state: request.state,
                };
                render::page(StatusCode::OK, &page, redirect_origin)
            }
            Some(end_session_response::Result::Error(e)) => error_page(
                oidc,
                StatusCode::BAD_REQUEST,
                &e.error,
                &e.description,
                None,
            ),
            None => failed(
                oidc,
                &tonic::Status::internal("an empty end-session answer"),
            ),
        };
        if answer.clear_session {
            page.cookies.push(cookies::clear(cookies::SESSION));
        }
        page.cookies.extend(new_binding);
        Ok(page)
    })
    .await
}
