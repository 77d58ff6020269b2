//! The account pages that the user service's mail links to: confirming an
//! email address, undoing a change of address, asking for a password reset
//! link and choosing a new password. Each is a thin page over one
//! `suite.user.v1.UserService` call, in the sign-in pages' look and under
//! their policy (no script, no framing, forms only to this origin; every
//! answer `Cache-Control: no-store` and `Referrer-Policy: no-referrer`, as
//! [`Answer`] sets them: the token is in the URL).
//!
//! A link's `GET` never acts: mail scanners and link previews fetch links,
//! so the `GET` shows a form with the token, and the user's `POST` of it
//! acts (a `HEAD` is served as the `GET`, so it acts no more). A token that
//! is missing, too long, or that the service refuses (used, expired, or the
//! account changed since it was mailed) shows the "not valid any more" page,
//! with status 400 (the service's InvalidArgument, as the API answers it).
//!
//! The `POST`s are counted in the strict bucket, as password sign-ins are
//! (each tries a token or mails someone); the pages' `GET`s in the general
//! one. A `POST` that the browser says came from another site is refused;
//! the forgot-password form, which no secret guards, also carries a CSRF
//! token derived from the browser's binding cookie (as the device form does).

use super::{
    Peer, Shared,
    form::Params,
    pages::{admit_params, binding, failed_call},
    render::{Answer, Chrome, chrome, error_page, render},
    respond,
};
use crate::contract::routes::RateClass;
use askama::Template;
use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use subtle::ConstantTimeEq;
use suite_proto::user::{
    ConfirmEmailRequest, RequestPasswordResetRequest, ResetPasswordRequest,
    RevertEmailChangeRequest,
};
use tonic::Code;
use tonic_types::StatusExt;

/// The pages' paths (the user service's mail links to the first three, and
/// to the fourth from the second's page).
pub const VERIFY_EMAIL_PATH: &str = "/account/verify-email";
pub const REVERT_EMAIL_PATH: &str = "/account/revert-email";
pub const RESET_PASSWORD_PATH: &str = "/account/reset-password";
pub const FORGOT_PASSWORD_PATH: &str = "/account/forgot-password";

/// The longest link token taken (the contract's `max_length` of every
/// `token` field): anything longer is no token the service issued.
const MAX_TOKEN_CHARS: usize = 128;

/// The name the service logs a failed call under.
const SERVICE: &str = "UserService";

/// A link to show on a message page.
pub struct Link {
    pub href: String,
    pub text: String,
}

/// The page of a link's `GET`: what posting it will do, and its button.
#[derive(Template)]
#[template(path = "account_confirm.html")]
pub struct ConfirmTemplate {
    pub chrome: Chrome,
    pub heading: &'static str,
    pub lead: &'static str,
    pub action: &'static str,
    pub button: &'static str,
    pub token: String,
}

/// A page that only tells: an outcome, or why a link did nothing.
#[derive(Template)]
#[template(path = "account_message.html")]
pub struct MessageTemplate {
    pub chrome: Chrome,
    pub heading: String,
    pub lines: Vec<String>,
    /// The first line is an error, announced as one.
    pub alert: bool,
    pub links: Vec<Link>,
    /// Ends with "Sign in" (a link if one is configured).
    pub offer_sign_in: bool,
    pub sign_in_url: Option<String>,
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
pub struct ForgotPasswordTemplate {
    pub chrome: Chrome,
    pub csrf_token: String,
    pub login: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "reset_password.html")]
pub struct ResetPasswordTemplate {
    pub chrome: Chrome,
    pub token: String,
    pub form_error: Option<String>,
    pub password_error: Option<String>,
    pub repeat_error: Option<String>,
}

/// What a token link's page says, and where its form goes.
struct TokenPage {
    heading: &'static str,
    lead: &'static str,
    action: &'static str,
    button: &'static str,
}

const VERIFY_EMAIL: TokenPage = TokenPage {
    heading: "Confirm your email address",
    lead: "Confirm that this email address is yours: the button below finishes it.",
    action: VERIFY_EMAIL_PATH,
    button: "Confirm my email address",
};

const REVERT_EMAIL: TokenPage = TokenPage {
    heading: "Undo the change of your email address",
    lead: "The account's address goes back to this one, and everyone signed in to the \
           account is signed out. Then choose a new password.",
    action: REVERT_EMAIL_PATH,
    button: "Undo the change",
};

/// A rendered page with `status`, or the bare 500 of a template that failed.
fn page(status: StatusCode, template: &impl Template) -> Answer {
    match render(template) {
        Ok(body) => Answer::page(status, body, None),
        Err(a) => a,
    }
}

fn message(
    oidc: &Shared,
    status: StatusCode,
    heading: &str,
    lines: Vec<String>,
    links: Vec<Link>,
) -> Answer {
    page(
        status,
        &MessageTemplate {
            chrome: chrome(oidc),
            heading: heading.to_owned(),
            alert: !status.is_success(),
            lines,
            links,
            offer_sign_in: true,
            sign_in_url: oidc.branding.sign_in_url.clone(),
        },
    )
}

/// The page of a link that does nothing any more (or never did): 400.
/// A password reset link's page offers a new one.
fn not_valid(oidc: &Shared, offer_new_reset_link: bool) -> Answer {
    let links = if offer_new_reset_link {
        vec![Link {
            href: FORGOT_PASSWORD_PATH.to_owned(),
            text: "Ask for a new link".to_owned(),
        }]
    } else {
        Vec::new()
    };
    message(
        oidc,
        StatusCode::BAD_REQUEST,
        "This link is not valid any more",
        vec![
            "This link is not valid any more: it was used, it expired, or the account \
             changed since it was sent."
                .to_owned(),
            "Each link in our mail works once, for a limited time.".to_owned(),
        ],
        links,
    )
}

/// The link token among `params`, if it can be one: present, not longer than
/// any the service issues, and printable ASCII (it goes back into a form).
/// Whether it is valid is the service's to say.
fn link_token(params: &Params) -> Option<String> {
    params
        .get("token")
        .filter(|t| t.len() <= MAX_TOKEN_CHARS && t.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
}

/// The fields an InvalidArgument names (by their proto names), and what is wrong with each.
fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// True when the browser says (Fetch Metadata) that the request comes from
/// another site, or a sibling one: no form of another site may act here. A
/// request that says nothing (older browsers, other clients) is left to the
/// form's own guard.
fn from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.eq_ignore_ascii_case("cross-site") || v.eq_ignore_ascii_case("same-site")
        })
}

/// A page's `GET`, admitted to the general bucket: the query's parameters
/// (a query that cannot be read, a repeated token say, has no token).
async fn admit_query(
    oidc: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    query: Option<String>,
) -> Result<Params, Answer> {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let (_, params) = admit_params(oidc, peer, headers, RateClass::General, Ok(params)).await?;
    Ok(params)
}

/// A page's `POST`, admitted to the strict bucket and refused if another
/// site sent it: the client's address and the form.
async fn admit_form(
    oidc: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(IpAddr, Params), Answer> {
    let params = Params::from_body(headers, body);
    let admitted = admit_params(oidc, peer, headers, RateClass::Auth, params).await?;
    if from_another_site(headers) {
        tracing::warn!(
            security_event = "account_form_forgery",
            "an account page's form came from another site"
        );
        return Err(error_page(
            oidc,
            StatusCode::FORBIDDEN,
            "access_denied",
            "This form was sent from another site. Open the link from your mail again.",
            None,
        ));
    }
    Ok(admitted)
}

/// The `GET` of a token link: the form that posts it, or the not-valid page.
async fn token_page(
    oidc: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    query: Option<String>,
    what: &TokenPage,
) -> Answer {
    respond(async {
        let params = admit_query(oidc, peer, headers, query).await?;
        let Some(token) = link_token(&params) else {
            return Ok(not_valid(oidc, false));
        };
        Ok(page(
            StatusCode::OK,
            &ConfirmTemplate {
                chrome: chrome(oidc),
                heading: what.heading,
                lead: what.lead,
                action: what.action,
                button: what.button,
                token,
            },
        ))
    })
    .await
}

/// `GET /account/verify-email?token=…`: the confirmation form.
pub async fn verify_email_page(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    token_page(&oidc, peer, &headers, query, &VERIFY_EMAIL)
        .await
        .into_response()
}

/// `POST /account/verify-email`: ConfirmEmail with the posted token.
pub async fn verify_email(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(async {
        let (client, form) = admit_form(&oidc, peer, &headers, &body).await?;
        let Some(token) = link_token(&form) else {
            return Ok(not_valid(&oidc, false));
        };
        let call = oidc
            .users()
            .confirm_email(oidc.request(ConfirmEmailRequest { token }, client))
            .await;
        Ok(match call.map(tonic::Response::into_inner) {
            Ok(confirmed) => message(
                &oidc,
                StatusCode::OK,
                "Email address confirmed",
                vec![format!(
                    "Your email address {} is confirmed.",
                    confirmed.email
                )],
                Vec::new(),
            ),
            // The token is the request's only field: whatever is wrong, it is.
            Err(s) if s.code() == Code::InvalidArgument => not_valid(&oidc, false),
            Err(s) => failed_call(&oidc, SERVICE, &s),
        })
    })
    .await
    .into_response()
}

/// `GET /account/revert-email?token=…`: the form that undoes the change.
pub async fn revert_email_page(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    token_page(&oidc, peer, &headers, query, &REVERT_EMAIL)
        .await
        .into_response()
}

/// `POST /account/revert-email`: RevertEmailChange with the posted token.
pub async fn revert_email(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(async {
        let (client, form) = admit_form(&oidc, peer, &headers, &body).await?;
        let Some(token) = link_token(&form) else {
            return Ok(not_valid(&oidc, false));
        };
        let call = oidc
            .users()
            .revert_email_change(oidc.request(RevertEmailChangeRequest { token }, client))
            .await;
        Ok(match call.map(tonic::Response::into_inner) {
            // Whoever changed the address may know the password: the page
            // leads to a new one (sessions are already gone).
            Ok(reverted) => message(
                &oidc,
                StatusCode::OK,
                "Your email address is back",
                vec![
                    format!(
                        "Your address is {} again and everyone was signed out of the account.",
                        reverted.email
                    ),
                    "Choose a new password now: whoever changed the address may know the \
                     old one."
                        .to_owned(),
                ],
                vec![Link {
                    href: FORGOT_PASSWORD_PATH.to_owned(),
                    text: "Choose a new password".to_owned(),
                }],
            ),
            Err(s) if s.code() == Code::InvalidArgument => not_valid(&oidc, false),
            Err(s) => failed_call(&oidc, SERVICE, &s),
        })
    })
    .await
    .into_response()
}

/// The forgot-password form's CSRF token: derived from the browser's
/// binding cookie, which another site can neither read nor set (`__Host-`,
/// `HttpOnly`, `SameSite=Lax`), so a form posted from elsewhere cannot
/// carry it. Its own label: no other form's token is this one's.
fn csrf_token(binding: &str) -> String {
    let digest = Sha256::digest(format!("suite forgot-password form:{binding}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

fn forgot_form(
    oidc: &Shared,
    status: StatusCode,
    binding: &str,
    login: &str,
    error: Option<String>,
) -> Answer {
    page(
        status,
        &ForgotPasswordTemplate {
            chrome: chrome(oidc),
            csrf_token: csrf_token(binding),
            login: login.chars().take(suite_proto::MAX_LOGIN_CHARS).collect(),
            error,
        },
    )
}

/// `GET /account/forgot-password`: the form.
pub async fn forgot_password_page(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    respond(async {
        let params = admit_query(&oidc, peer, &headers, query).await?;
        let (binding, new_binding) = binding(&headers);
        let mut answer = forgot_form(&oidc, StatusCode::OK, &binding, &params.text("login"), None);
        answer.cookies.extend(new_binding);
        Ok(answer)
    })
    .await
    .into_response()
}

/// `POST /account/forgot-password`: RequestPasswordReset. The answer is
/// the same whether or not an account matched (the service's answer is
/// too, in content and in time): nobody learns here who has an account.
pub async fn forgot_password(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(async {
        let (client, form) = admit_form(&oidc, peer, &headers, &body).await?;
        let (binding, new_binding) = binding(&headers);
        let login = form.text("login").trim().to_owned();
        let posted = form.text("csrf_token");
        // A new binding means the form was not this browser's (or its cookie
        // expired): ask again, with a token that will match.
        if new_binding.is_some()
            || !bool::from(csrf_token(&binding).as_bytes().ct_eq(posted.as_bytes()))
        {
            tracing::warn!(
                security_event = "account_form_forgery",
                "the forgot-password form's CSRF token did not match its browser"
            );
            let mut answer = forgot_form(
                &oidc,
                StatusCode::BAD_REQUEST,
                &binding,
                &login,
                Some("This form expired. Check your address and send it again.".into()),
            );
            answer.cookies.extend(new_binding);
            return Ok(answer);
        }
        if login.is_empty() || login.chars().count() > suite_proto::MAX_LOGIN_CHARS {
            return Ok(forgot_form(
                &oidc,
                StatusCode::BAD_REQUEST,
                &binding,
                &login,
                Some("Enter your email address or username.".into()),
            ));
        }
        let call = oidc
            .users()
            .request_password_reset(oidc.request(RequestPasswordResetRequest { login }, client))
            .await;
        Ok(match call {
            // A login that cannot be any account's is no account's: the
            // same page as for any other.
            Ok(_) => reset_link_sent(&oidc),
            Err(s) if s.code() == Code::InvalidArgument => reset_link_sent(&oidc),
            Err(s) => failed_call(&oidc, SERVICE, &s),
        })
    })
    .await
    .into_response()
}

/// The one answer to a request for a reset link.
fn reset_link_sent(oidc: &Shared) -> Answer {
    message(
        oidc,
        StatusCode::OK,
        "Check your mail",
        vec![
            "If an account has this address or username, we sent a link to its email \
             address; it works for a few minutes."
                .to_owned(),
            "No mail? Check your spam folder, or ask again.".to_owned(),
        ],
        vec![Link {
            href: FORGOT_PASSWORD_PATH.to_owned(),
            text: "Ask again".to_owned(),
        }],
    )
}

fn reset_form(
    oidc: &Shared,
    status: StatusCode,
    token: String,
    form_error: Option<String>,
    password_error: Option<String>,
    repeat_error: Option<String>,
) -> Answer {
    page(
        status,
        &ResetPasswordTemplate {
            chrome: chrome(oidc),
            token,
            form_error,
            password_error,
            repeat_error,
        },
    )
}

/// `GET /account/reset-password?token=…`: the new password's form.
pub async fn reset_password_page(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    respond(async {
        let params = admit_query(&oidc, peer, &headers, query).await?;
        let Some(token) = link_token(&params) else {
            return Ok(not_valid(&oidc, true));
        };
        Ok(reset_form(&oidc, StatusCode::OK, token, None, None, None))
    })
    .await
    .into_response()
}

/// `POST /account/reset-password`: ResetPassword, once both passwords match.
/// The form comes back with the policy's word on the password; a token the
/// service refuses is the not-valid page.
pub async fn reset_password(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(async {
        let (client, form) = admit_form(&oidc, peer, &headers, &body).await?;
        let Some(token) = link_token(&form) else {
            return Ok(not_valid(&oidc, true));
        };
        let new_password = form.text("new_password");
        if new_password.is_empty() {
            let why = "Enter a new password.".to_owned();
            return Ok(reset_form(
                &oidc,
                StatusCode::BAD_REQUEST,
                token,
                None,
                Some(why),
                None,
            ));
        }
        // Checked here, before the service: a typo would otherwise become
        // the account's password.
        if new_password != form.text("repeat_password") {
            let why = "The two passwords are not the same: type the new password twice.";
            return Ok(reset_form(
                &oidc,
                StatusCode::BAD_REQUEST,
                token,
                None,
                None,
                Some(why.to_owned()),
            ));
        }
        let request = ResetPasswordRequest {
            token: token.clone(),
            new_password,
        };
        let call = oidc
            .users()
            .reset_password(oidc.request(request, client))
            .await;
        Ok(match call {
            Ok(_) => message(
                &oidc,
                StatusCode::OK,
                "Password changed",
                vec!["Your password was changed; every session was signed out.".to_owned()],
                Vec::new(),
            ),
            Err(s) if s.code() == Code::InvalidArgument => {
                let violations = violations(&s);
                let on = |field: &str| {
                    violations
                        .iter()
                        .find(|(f, _)| f == field)
                        .map(|(_, why)| why.clone())
                };
                // A spent token makes any password moot.
                if on("token").is_some() {
                    not_valid(&oidc, true)
                } else if let Some(why) = on("new_password") {
                    reset_form(&oidc, StatusCode::BAD_REQUEST, token, None, Some(why), None)
                } else {
                    let why = s.message().to_owned();
                    reset_form(&oidc, StatusCode::BAD_REQUEST, token, Some(why), None, None)
                }
            }
            Err(s) => failed_call(&oidc, SERVICE, &s),
        })
    })
    .await
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_link_token_is_present_short_and_printable() {
        let token = |q: &str| link_token(&Params::parse(q.as_bytes()).expect("parsed"));
        assert_eq!(token("token=abc-DEF_123").as_deref(), Some("abc-DEF_123"));
        assert_eq!(token(""), None);
        assert_eq!(token("token="), None);
        assert_eq!(token("token=a%20b"), None);
        assert_eq!(token("token=a%0Ab"), None);
        let long = "a".repeat(MAX_TOKEN_CHARS + 1);
        assert_eq!(token(&format!("token={long}")), None);
        let longest = "a".repeat(MAX_TOKEN_CHARS);
        assert_eq!(token(&format!("token={longest}")), Some(longest));
    }

    #[test]
    fn only_another_sites_form_is_refused() {
        let mut headers = HeaderMap::new();
        assert!(!from_another_site(&headers));
        for (value, refused) in [
            ("same-origin", false),
            ("none", false),
            ("cross-site", true),
            ("same-site", true),
        ] {
            headers.insert("sec-fetch-site", HeaderValue::from_static(value));
            assert_eq!(from_another_site(&headers), refused, "{value}");
        }
    }

    #[test]
    fn the_forgot_password_token_is_the_bindings_and_no_other_forms() {
        let a = csrf_token("binding-a");
        assert_eq!(a, csrf_token("binding-a"));
        assert_ne!(a, csrf_token("binding-b"));
        assert_eq!(a.len(), 43);
        assert!(!a.contains("binding"));
    }
}
