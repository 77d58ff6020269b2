//! The device verification page of the device authorization grant (RFC
//! 8628 §3.3): `GET /oauth2/device` shows the user-code form (pre-filled
//! from `verification_uri_complete`'s `user_code`), and its `POST` asks the
//! auth service for the device request's next step. The sign-in and consent
//! pages that follow are the authorization flow's own (`pages.rs`).

use super::{
    Peer, Shared, cookies,
    form::Params,
    pages::{admit_params, answer_of, binding, failed, step_answer},
    render::{Answer, DeviceTemplate, chrome, render},
    respond,
};
use crate::contract::routes::RateClass;
use axum::{
    body::Bytes,
    extract::{RawQuery, State},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use suite_proto::auth::{VerifyUserCodeRequest, verify_user_code_response};

/// The most of a typed code kept to show again: a code is nine characters.
const MAX_SHOWN_CODE: usize = 32;

/// The user-code form's CSRF token: derived from the browser's binding
/// cookie, which another site can neither read nor set (`__Host-`,
/// `HttpOnly`), so a form posted from elsewhere cannot carry it. Nothing
/// is stored for a page that may never be posted.
fn csrf_token(binding: &str) -> String {
    let digest = Sha256::digest(format!("suite device form:{binding}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
}

fn entry_page(
    oidc: &Shared,
    status: StatusCode,
    csrf: String,
    code: &str,
    error: Option<String>,
) -> Answer {
    let page = DeviceTemplate {
        chrome: chrome(oidc),
        csrf_token: csrf,
        user_code: code.chars().take(MAX_SHOWN_CODE).collect(),
        error,
    };
    match render(&page) {
        Ok(body) => Answer::page(status, body, None),
        Err(a) => a,
    }
}

/// `GET /oauth2/device`: the form, pre-filled with `user_code` if given. It
/// is never submitted for the user: the code's owner confirms by posting.
pub async fn device_get(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    respond(async {
        let params = Params::parse(query.unwrap_or_default().as_bytes());
        let (_, params) = admit_params(&oidc, peer, &headers, RateClass::General, params).await?;
        let (binding, new_binding) = binding(&headers);
        let mut answer = entry_page(
            &oidc,
            StatusCode::OK,
            csrf_token(&binding),
            &params.text("user_code"),
            None,
        );
        answer.cookies.extend(new_binding);
        Ok(answer)
    })
    .await
    .into_response()
}

/// `POST /oauth2/device`: the user code was posted. Counted in the strict
/// bucket, as password sign-ins are: a user code is short enough to guess
/// at a high rate, a password-like thing (RFC 8628 §5.1).
pub async fn device_post(
    State(oidc): State<Shared>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    respond(async {
        let params = Params::from_body(&headers, &body);
        let (client, form) = admit_params(&oidc, peer, &headers, RateClass::Auth, params).await?;
        let (binding, new_binding) = binding(&headers);
        let expected = csrf_token(&binding);
        let posted = form.text("csrf_token");
        let user_code = form.text("user_code");
        // A new binding means the form was not this browser's (or its cookie
        // expired): ask again, with a token that will match.
        if new_binding.is_some() || !bool::from(expected.as_bytes().ct_eq(posted.as_bytes())) {
            tracing::warn!(
                security_event = "oauth_form_forgery",
                "the device form's CSRF token did not match its browser"
            );
            let mut answer = entry_page(
                &oidc,
                StatusCode::BAD_REQUEST,
                expected,
                &user_code,
                Some("This form expired. Check the code and continue again.".into()),
            );
            answer.cookies.extend(new_binding);
            return Ok(answer);
        }
        let request = VerifyUserCodeRequest {
            user_code: user_code.clone(),
            browser_session: cookies::get(&headers, cookies::SESSION).unwrap_or_default(),
            browser_binding: binding,
        };
        let answer = answer_of(
            &oidc,
            oidc.client()
                .verify_user_code(oidc.request(request, client)),
        )
        .await?;
        Ok(match answer.result {
            Some(verify_user_code_response::Result::Step(step)) => {
                step_answer(&oidc, Some(step), None, "")
            }
            Some(verify_user_code_response::Result::RetryError(why)) => entry_page(
                &oidc,
                StatusCode::BAD_REQUEST,
                expected,
                &user_code,
                Some(why),
            ),
            None => failed(&oidc, &tonic::Status::internal("an empty user-code answer")),
        })
    })
    .await
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csrf_token_is_the_bindings_and_reveals_nothing_of_it() {
        let a = csrf_token("binding-a");
        assert_eq!(a, csrf_token("binding-a"));
        assert_ne!(a, csrf_token("binding-b"));
        assert_eq!(a.len(), 43);
        assert!(!a.contains("binding"));
    }
}
