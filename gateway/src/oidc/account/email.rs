//! The links about addresses: the verification of an address (or of a new
//! one), and the undoing of a change from the old address. Each link's
//! `GET` shows a form with its token; the form's `POST` acts.

use super::{
    FORGOT_PASSWORD_PATH, Link, REVERT_EMAIL_PATH, SERVICE, VERIFY_EMAIL_PATH, admit_form,
    admit_query, link_token, message, not_valid, page,
};
use crate::oidc::{
    Peer, Shared,
    pages::failed_call,
    render::{Answer, Chrome, chrome},
    respond,
};
use askama::Template;
use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    response::{IntoResponse, Response},
};
use http::{HeaderMap, StatusCode};
use std::net::SocketAddr;
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

/// The `POST` of a token link: `call` with the posted token, and `done`'s
/// page for its answer; the not-valid page for a refused token.
async fn redeem<T, Fut>(
    oidc: &Shared,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &[u8],
    call: impl FnOnce(tonic::Request<String>) -> Fut,
    done: impl FnOnce(T) -> Answer,
) -> Answer
where
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    respond(async {
        let (client, form) = admit_form(oidc, peer, headers, body).await?;
        let Some(token) = link_token(&form) else {
            return Ok(not_valid(oidc, false));
        };
        Ok(match call(oidc.request(token, client)).await {
            Ok(answer) => done(answer.into_inner()),
            // The token is the request's only field: whatever is wrong, it is
            // (NotFound: unknown, used or expired; InvalidArgument: malformed).
            Err(s) if matches!(s.code(), Code::InvalidArgument | Code::NotFound) => {
                not_valid(oidc, false)
            }
            Err(s) => failed_call(oidc, SERVICE, &s),
        })
    })
    .await
}

/// `POST /account/verify-email`: ConfirmEmail with the posted token.
pub async fn verify_email(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let users = oidc.users();
    redeem(
        &oidc,
        peer,
        &headers,
        &body,
        |r| {
            let mut users = users;
            async move {
                users
                    .confirm_email(r.map(|token| ConfirmEmailRequest { token }))
                    .await
            }
        },
        |confirmed| {
            message(
                &oidc,
                StatusCode::OK,
                "Email address confirmed",
                vec![format!(
                    "Your email address {} is confirmed.",
                    confirmed.email
                )],
                Vec::new(),
            )
        },
    )
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
    let users = oidc.users();
    redeem(
        &oidc,
        peer,
        &headers,
        &body,
        |r| {
            let mut users = users;
            async move {
                users
                    .revert_email_change(r.map(|token| RevertEmailChangeRequest { token }))
                    .await
            }
        },
        // Whoever changed the address may know the password: the page leads
        // to a new one (sessions are already gone).
        |reverted| {
            message(
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
            )
        },
    )
    .await
    .into_response()
}
