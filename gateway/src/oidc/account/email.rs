//! The links about addresses: the verification of an address (or of a new
//! one), and the undoing of a change from the old address. Each link's
//! `GET` shows a form with its token; the form's `POST` acts.

use super::{
    FORGOT_PASSWORD_PATH, Link, REVERT_EMAIL_PATH, SERVICE, VERIFY_EMAIL_PATH, admit_form,
    admit_query, link_token, message, not_valid,
};
use crate::oidc::{
    Visit,
    pages::failed_call,
    render::{self, Answer, Chrome, chrome},
    respond,
};
use askama::Template;
use axum::{body::Bytes, extract::RawQuery};
use http::StatusCode;
use suite_proto::user::{ConfirmEmailRequest, RevertEmailChangeRequest};
use tonic::Code;

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

/// The two links about addresses. Each is a page that shows its form
/// ([`token_page`]) and the form's `POST` that redeems the token
/// ([`redeem`]); they differ only in their words and their call.
#[derive(Clone, Copy)]
enum EmailLink {
    /// An address (or a new one) confirmed: ConfirmEmail.
    Verify,
    /// A change of address undone from the old address: RevertEmailChange.
    Revert,
}

impl EmailLink {
    /// What the link's page says, and where its form goes.
    fn page(self, token: String, visit: &Visit) -> ConfirmTemplate {
        let chrome = chrome(&visit.oidc);
        match self {
            Self::Verify => ConfirmTemplate {
                chrome,
                heading: "Confirm your email address",
                lead: "Confirm that this email address is yours: the button below finishes it.",
                action: VERIFY_EMAIL_PATH,
                button: "Confirm my email address",
                token,
            },
            Self::Revert => ConfirmTemplate {
                chrome,
                heading: "Undo the change of your email address",
                lead: "The account's address goes back to this one, and everyone signed in to \
                       the account is signed out. Then choose a new password.",
                action: REVERT_EMAIL_PATH,
                button: "Undo the change",
                token,
            },
        }
    }

    /// The link's call with its token: the address the account has now.
    async fn call(
        self,
        visit: &Visit,
        request: tonic::Request<String>,
    ) -> Result<String, tonic::Status> {
        let mut users = visit.oidc.users();
        let email = match self {
            Self::Verify => {
                users
                    .confirm_email(request.map(|token| ConfirmEmailRequest { token }))
                    .await?
                    .into_inner()
                    .email
            }
            Self::Revert => {
                users
                    .revert_email_change(request.map(|token| RevertEmailChangeRequest { token }))
                    .await?
                    .into_inner()
                    .email
            }
        };
        Ok(email)
    }

    /// The page after the call, for the account's address `email`.
    fn done(self, visit: &Visit, email: &str) -> Answer {
        match self {
            Self::Verify => message(
                &visit.oidc,
                StatusCode::OK,
                "Email address confirmed",
                vec![format!("Your email address {email} is confirmed.")],
                Vec::new(),
            ),
            // Whoever changed the address may know the password: the page
            // leads to a new one (sessions are already gone).
            Self::Revert => message(
                &visit.oidc,
                StatusCode::OK,
                "Your email address is back",
                vec![
                    format!(
                        "Your address is {email} again and everyone was signed out of the account."
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
        }
    }
}

/// The `GET` of a token link: the form that posts it, or the not-valid page.
async fn token_page(visit: &Visit, query: Option<String>, link: EmailLink) -> Answer {
    respond(async {
        let params = admit_query(visit, query).await?;
        let Some(token) = link_token(&params) else {
            return Ok(not_valid(&visit.oidc, false));
        };
        Ok(render::page(StatusCode::OK, &link.page(token, visit), None))
    })
    .await
}

/// The `POST` of a token link: its call with the posted token, and the page
/// after; the not-valid page for a refused token.
async fn redeem(visit: &Visit, body: &[u8], link: EmailLink) -> Answer {
    respond(async {
        let (client, form) = admit_form(visit, body).await?;
        let Some(token) = link_token(&form) else {
            return Ok(not_valid(&visit.oidc, false));
        };
        Ok(
            match link.call(visit, visit.oidc.request(token, client)).await {
                Ok(email) => link.done(visit, &email),
                // The token is the request's only field: whatever is wrong, it is
                // (NotFound: unknown, used or expired; InvalidArgument: malformed).
                Err(s) if matches!(s.code(), Code::InvalidArgument | Code::NotFound) => {
                    not_valid(&visit.oidc, false)
                }
                Err(s) => failed_call(&visit.oidc, SERVICE, &s),
            },
        )
    })
    .await
}

/// `GET /account/verify-email?token=…`: the confirmation form.
pub async fn verify_email_page(visit: Visit, RawQuery(query): RawQuery) -> Answer {
    token_page(&visit, query, EmailLink::Verify).await
}

/// `POST /account/verify-email`: ConfirmEmail with the posted token.
pub async fn verify_email(visit: Visit, body: Bytes) -> Answer {
    redeem(&visit, &body, EmailLink::Verify).await
}

/// `GET /account/revert-email?token=…`: the form that undoes the change.
pub async fn revert_email_page(visit: Visit, RawQuery(query): RawQuery) -> Answer {
    token_page(&visit, query, EmailLink::Revert).await
}

/// `POST /account/revert-email`: RevertEmailChange with the posted token.
pub async fn revert_email(visit: Visit, body: Bytes) -> Answer {
    redeem(&visit, &body, EmailLink::Revert).await
}
