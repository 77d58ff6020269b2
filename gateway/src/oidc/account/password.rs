//! The forgotten password: the form that asks for a reset link (the same
//! answer whether or not an account matched), and the reset link's form
//! that sets the new password.

use super::{
    FORGOT_PASSWORD_PATH, Link, SERVICE, admit_form, admit_query, link_token, message, not_valid,
    page, violations,
};
use crate::oidc::{
    Peer, Shared,
    pages::{binding, failed_call},
    render::{Answer, Chrome, chrome},
    respond,
};
use askama::Template;
use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use suite_proto::user::{RequestPasswordResetRequest, ResetPasswordRequest};
use tonic::Code;

/// The forgotten password's form: an address or a username.
#[derive(Template)]
#[template(path = "forgot_password.html")]
pub struct ForgotPasswordTemplate {
    pub chrome: Chrome,
    pub csrf_token: String,
    pub login: String,
    pub error: Option<String>,
}

/// The reset link's form: the new password, twice; each error by its field.
#[derive(Template)]
#[template(path = "reset_password.html")]
pub struct ResetPasswordTemplate {
    pub chrome: Chrome,
    pub token: String,
    pub form_error: Option<String>,
    pub password_error: Option<String>,
    pub repeat_error: Option<String>,
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
            // Unknown, used, expired, or for a password changed since.
            Err(s) if s.code() == Code::NotFound => not_valid(&oidc, true),
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

    #[test]
    fn the_forgot_password_token_is_the_bindings_and_no_other_forms() {
        let a = csrf_token("binding-a");
        assert_eq!(a, csrf_token("binding-a"));
        assert_ne!(a, csrf_token("binding-b"));
        assert_eq!(a.len(), 43);
        assert!(!a.contains("binding"));
    }
}
