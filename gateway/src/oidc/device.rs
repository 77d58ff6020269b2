//! The device verification page of the device authorization grant (RFC
//! 8628 §3.3): `GET /oauth2/device` shows the user-code form (pre-filled
//! from `verification_uri_complete`'s `user_code`), and its `POST` asks the
//! auth service for the device request's next step. The sign-in and consent
//! pages that follow are the authorization flow's own (`pages.rs`).

use super::{
    Visit,
    csrf::{Bound, BoundForm},
    form::Params,
    pages::{admit_params, answer_of, failed, session, step_answer},
    render::{self, Answer, DeviceTemplate, chrome},
    respond,
};
use crate::contract::routes::RateClass;
use axum::{body::Bytes, extract::RawQuery};
use http::StatusCode;
use suite_proto::auth::{VerifyUserCodeRequest, verify_user_code_response};

/// The most of a typed code kept to show again: a code is nine characters.
const MAX_SHOWN_CODE: usize = 32;

/// The user-code form, guarded by the browser's binding.
const DEVICE_FORM: BoundForm = BoundForm {
    label: "device",
    security_event: "oauth_form_forgery",
};

/// The user-code form with `code` (and `error`), for this browser's token.
fn entry_page(
    visit: &Visit,
    status: StatusCode,
    bound: &Bound,
    code: &str,
    error: Option<String>,
) -> Answer {
    let page = DeviceTemplate {
        chrome: chrome(&visit.oidc),
        csrf_token: bound.csrf_token.clone(),
        user_code: code.chars().take(MAX_SHOWN_CODE).collect(),
        error,
    };
    let mut answer = render::page(status, &page, None);
    answer.cookies.extend(bound.new_binding.clone());
    answer
}

/// `GET /oauth2/device`: the form, pre-filled with `user_code` if given. It
/// is never submitted for the user: the code's owner confirms by posting.
pub async fn device_get(visit: Visit, RawQuery(query): RawQuery) -> Answer {
    respond(async {
        let params = Params::parse(query.unwrap_or_default().as_bytes());
        let (_, params) = admit_params(&visit, RateClass::General, params).await?;
        let bound = DEVICE_FORM.bind(&visit.headers);
        let code = params.text("user_code");
        Ok(entry_page(&visit, StatusCode::OK, &bound, &code, None))
    })
    .await
}

/// `POST /oauth2/device`: the user code was posted. Counted in the strict
/// bucket, as password sign-ins are: a user code is short enough to guess
/// at a high rate, a password-like thing (RFC 8628 §5.1).
pub async fn device_post(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let params = Params::from_body(&visit.headers, &body);
        let (client, form) = admit_params(&visit, RateClass::Auth, params).await?;
        let user_code = form.text("user_code");
        let again = |bound: &Bound, why: String| {
            entry_page(
                &visit,
                StatusCode::BAD_REQUEST,
                bound,
                &user_code,
                Some(why),
            )
        };
        let bound = DEVICE_FORM
            .check(&visit.headers, &form.text("csrf_token"))
            .map_err(|bound| {
                again(
                    &bound,
                    "This form expired. Check the code and continue again.".into(),
                )
            })?;
        let request = VerifyUserCodeRequest {
            user_code: user_code.clone(),
            browser_session: session(&visit.headers),
            browser_binding: bound.binding.clone(),
        };
        let oidc = &visit.oidc;
        let answer = answer_of(
            oidc,
            oidc.client()
                .verify_user_code(oidc.request(request, client)),
        )
        .await?;
        Ok(match answer.result {
            Some(verify_user_code_response::Result::Step(step)) => {
                step_answer(oidc, Some(step), None, "")
            }
            Some(verify_user_code_response::Result::RetryError(why)) => again(&bound, why),
            None => failed(oidc, &tonic::Status::internal("an empty user-code answer")),
        })
    })
    .await
}
