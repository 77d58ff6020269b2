//! The forgotten password: the form that asks for a reset link (the same
//! answer whether or not an account matched), and the reset link's form
//! that sets the new password.

use super::{
    FORGOT_PASSWORD_PATH, Link, SERVICE, admit_form, admit_query, link_token, message, not_valid,
    violations,
};
use crate::oidc::{
    Visit,
    csrf::{Bound, BoundForm},
    pages::failed_call,
    render::{self, Answer, Chrome, chrome},
    respond,
};
use askama::Template;
use axum::{body::Bytes, extract::RawQuery};
use http::StatusCode;
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

/// The forgot-password form, guarded by the browser's binding: no secret
/// guards it otherwise.
const FORGOT_FORM: BoundForm = BoundForm {
    label: "forgot-password",
    security_event: "account_form_forgery",
};

/// The forgot-password form with `login` (and `error`), for this browser's token.
fn forgot_form(
    visit: &Visit,
    status: StatusCode,
    bound: Bound,
    login: &str,
    error: Option<String>,
) -> Answer {
    let page = ForgotPasswordTemplate {
        chrome: chrome(&visit.oidc),
        csrf_token: bound.csrf_token,
        login: login.chars().take(suite_proto::MAX_LOGIN_CHARS).collect(),
        error,
    };
    let mut answer = render::page(status, &page, None);
    answer.cookies.extend(bound.new_binding);
    answer
}

/// `GET /account/forgot-password`: the form.
pub async fn forgot_password_page(visit: Visit, RawQuery(query): RawQuery) -> Answer {
    respond(async {
        let params = admit_query(&visit, query).await?;
        let bound = FORGOT_FORM.bind(&visit.headers);
        let login = params.text("login");
        Ok(forgot_form(&visit, StatusCode::OK, bound, &login, None))
    })
    .await
}

/// `POST /account/forgot-password`: RequestPasswordReset. The answer is
/// the same whether or not an account matched (the service's answer is
/// too, in content and in time): nobody learns here who has an account.
pub async fn forgot_password(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form) = admit_form(&visit, &body).await?;
        let login = form.text("login").trim().to_owned();
        let again = |bound, why: &str| {
            forgot_form(
                &visit,
                StatusCode::BAD_REQUEST,
                bound,
                &login,
                Some(why.to_owned()),
            )
        };
        let bound = FORGOT_FORM
            .check(&visit.headers, &form.text("csrf_token"))
            .map_err(|bound| {
                again(
                    bound,
                    "This form expired. Check your address and send it again.",
                )
            })?;
        if login.is_empty() || login.chars().count() > suite_proto::MAX_LOGIN_CHARS {
            return Ok(again(bound, "Enter your email address or username."));
        }
        let oidc = &visit.oidc;
        let call = oidc
            .users()
            .request_password_reset(oidc.request(RequestPasswordResetRequest { login }, client))
            .await;
        Ok(match call {
            // A login that cannot be any account's is no account's: the
            // same page as for any other.
            Ok(_) => reset_link_sent(&visit),
            Err(s) if s.code() == Code::InvalidArgument => reset_link_sent(&visit),
            Err(s) => failed_call(oidc, SERVICE, &s),
        })
    })
    .await
}

/// The one answer to a request for a reset link.
fn reset_link_sent(visit: &Visit) -> Answer {
    message(
        &visit.oidc,
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

/// What is wrong with a posted reset form, shown by the field it is about.
enum ResetError {
    /// The form as a whole (the service's word on no one field).
    Form(String),
    /// The new password.
    Password(String),
    /// Its repetition.
    Repeat(String),
}

/// The reset link's form for `token`: 200 and empty, or 400 with `error`.
fn reset_form(visit: &Visit, token: String, error: Option<ResetError>) -> Answer {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let (mut form_error, mut password_error, mut repeat_error) = (None, None, None);
    match error {
        None => {}
        Some(ResetError::Form(why)) => form_error = Some(why),
        Some(ResetError::Password(why)) => password_error = Some(why),
        Some(ResetError::Repeat(why)) => repeat_error = Some(why),
    }
    let page = ResetPasswordTemplate {
        chrome: chrome(&visit.oidc),
        token,
        form_error,
        password_error,
        repeat_error,
    };
    render::page(status, &page, None)
}

/// `GET /account/reset-password?token=…`: the new password's form.
pub async fn reset_password_page(visit: Visit, RawQuery(query): RawQuery) -> Answer {
    respond(async {
        let params = admit_query(&visit, query).await?;
        let Some(token) = link_token(&params) else {
            return Ok(not_valid(&visit.oidc, true));
        };
        Ok(reset_form(&visit, token, None))
    })
    .await
}

/// `POST /account/reset-password`: ResetPassword, once both passwords match.
/// The form comes back with the policy's word on the password; a token the
/// service refuses is the not-valid page.
pub async fn reset_password(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form) = admit_form(&visit, &body).await?;
        let oidc = &visit.oidc;
        let Some(token) = link_token(&form) else {
            return Ok(not_valid(oidc, true));
        };
        let new_password = form.text("new_password");
        if new_password.is_empty() {
            let why = ResetError::Password("Enter a new password.".to_owned());
            return Ok(reset_form(&visit, token, Some(why)));
        }
        // Checked here, before the service: a typo would otherwise become
        // the account's password.
        if new_password != form.text("repeat_password") {
            let why = "The two passwords are not the same: type the new password twice.";
            return Ok(reset_form(
                &visit,
                token,
                Some(ResetError::Repeat(why.to_owned())),
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
                oidc,
                StatusCode::OK,
                "Password changed",
                vec!["Your password was changed; every session was signed out.".to_owned()],
                Vec::new(),
            ),
            // Unknown, used, expired, or for a password changed since.
            Err(s) if s.code() == Code::NotFound => not_valid(oidc, true),
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
                    not_valid(oidc, true)
                } else if let Some(why) = on("new_password") {
                    reset_form(&visit, token, Some(ResetError::Password(why)))
                } else {
                    let why = s.message().to_owned();
                    reset_form(&visit, token, Some(ResetError::Form(why)))
                }
            }
            Err(s) => failed_call(oidc, SERVICE, &s),
        })
    })
    .await
}
