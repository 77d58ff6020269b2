//! The account area's sessions: one signed out from the list, or every
//! one of the user's at once.

use super::{ACCOUNT_PATH, AUTH_SERVICE, as_user, auth_service, posted, refused};
use crate::oidc::{
    Visit,
    account::{Link, MessageTemplate},
    cookies,
    pages::failed_call,
    render::{self, Answer, chrome},
    respond,
};
use axum::body::Bytes;
use http::StatusCode;
use suite_proto::auth::{RevokeAllSessionsRequest, RevokeSessionRequest};
use tonic::Code;

/// `POST /account/sessions/end`: RevokeSession of one of the user's
/// sessions (one already ended is as good), then back to the account area.
pub async fn end_session(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form, _, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let call = auth_service(oidc)
            .revoke_session(as_user(
                oidc,
                &acting,
                RevokeSessionRequest {
                    id: form.text("session_id"),
                },
                client,
            ))
            .await;
        Ok(match call {
            Ok(_) => Answer::redirect(format!("{ACCOUNT_PATH}?done=session-ended")),
            Err(s) if s.code() == Code::NotFound => {
                Answer::redirect(format!("{ACCOUNT_PATH}?done=session-ended"))
            }
            Err(s) => failed_call(oidc, AUTH_SERVICE, &s),
        })
    })
    .await
}

/// `POST /account/sign-out-everywhere`: RevokeAllSessions for the user,
/// which ends this browser's session too (its cookie goes).
pub async fn sign_out_everywhere(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, _, _, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let call = auth_service(oidc)
            .revoke_all_sessions(as_user(oidc, &acting, RevokeAllSessionsRequest {}, client))
            .await;
        if let Err(s) = call {
            return Ok(refused(oidc, AUTH_SERVICE, &s));
        }
        let mut answer = render::page(
            StatusCode::OK,
            &MessageTemplate {
                chrome: chrome(oidc),
                heading: "Signed out everywhere".to_owned(),
                lines: vec![
                    "Every session of your account ended, this browser's too: every \
                     application and browser has to sign in again."
                        .to_owned(),
                ],
                alert: false,
                links: vec![Link {
                    href: ACCOUNT_PATH.to_owned(),
                    text: "Sign in to your account".to_owned(),
                }],
                offer_sign_in: false,
                sign_in_url: None,
            },
            None,
        );
        answer.cookies.push(cookies::clear(cookies::SESSION));
        Ok(answer)
    })
    .await
}
