//! The account area's authenticator app: set up (its QR code, redrawn, and
//! its key) and confirmed with a first code.

use super::{
    ACCOUNT_PATH, TOTP_CONFIRM_PATH, TotpTemplate, USER_SERVICE, as_user, codes_page, overview,
    posted, refused, valid_id,
};
use crate::oidc::{
    Visit,
    account::violations,
    csrf::Bound,
    pages::failed_call,
    render::{self, Answer, chrome},
    respond,
};
use axum::body::Bytes;
use http::StatusCode;
use suite_proto::user::{ConfirmTotpRequest, EnrollTotpRequest};
use tonic::Code;

/// `POST /account/totp`: EnrollTotp, then the QR code, the key and the
/// form for a first code.
pub async fn enroll_totp(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form, bound, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let name = form.text("name").trim().to_owned();
        let call = oidc
            .users()
            .enroll_totp(as_user(
                oidc,
                &acting,
                EnrollTotpRequest {
                    user_id: "me".into(),
                    name,
                },
                client,
            ))
            .await;
        let begun = match call {
            Ok(b) => b.into_inner(),
            Err(s) if s.code() == Code::InvalidArgument => {
                let why = violations(&s)
                    .into_iter()
                    .map(|(_, why)| why)
                    .next()
                    .unwrap_or_else(|| s.message().to_owned());
                return Ok(overview(
                    &visit,
                    client,
                    &acting,
                    bound,
                    StatusCode::BAD_REQUEST,
                    None,
                    Some(format!("The authenticator's name {why}.")),
                )
                .await);
            }
            Err(s) => return Ok(refused(oidc, USER_SERVICE, &s)),
        };
        let Some(factor) = begun.factor else {
            return Ok(failed_call(
                oidc,
                USER_SERVICE,
                &tonic::Status::internal("an enrolment without its factor"),
            ));
        };
        let qr_svg = crate::oidc::account::qr::clean_svg(&begun.qr_svg);
        if qr_svg.is_none() && !begun.qr_svg.is_empty() {
            tracing::warn!("the enrolment's QR code is not in the shape drawn: left out");
        }
        Ok(totp_page(
            &visit,
            StatusCode::OK,
            bound,
            factor.id,
            qr_svg,
            group(&begun.secret),
            None,
        ))
    })
    .await
}

/// The base32 key in groups of four, as apps show and take it.
pub(super) fn group(secret: &str) -> String {
    secret
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ")
}

fn totp_page(
    visit: &Visit,
    status: StatusCode,
    bound: Bound,
    factor_id: String,
    qr_svg: Option<String>,
    secret: String,
    code_error: Option<String>,
) -> Answer {
    let page = TotpTemplate {
        chrome: chrome(&visit.oidc),
        csrf_token: bound.csrf_token,
        factor_id,
        qr_svg,
        secret,
        code_error,
        action: TOTP_CONFIRM_PATH,
        back: ACCOUNT_PATH,
    };
    let mut answer = render::page(status, &page, None);
    answer.cookies.extend(bound.new_binding);
    answer
}

/// `POST /account/totp/confirm`: ConfirmTotp with the first code; the
/// recovery codes of a first factor, shown this once.
pub async fn confirm_totp(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form, bound, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let factor_id = form.text("factor_id");
        let call = oidc
            .users()
            .confirm_totp(as_user(
                oidc,
                &acting,
                ConfirmTotpRequest {
                    user_id: "me".into(),
                    factor_id: factor_id.clone(),
                    code: form.text("code").trim().to_owned(),
                },
                client,
            ))
            .await;
        let confirmed = match call {
            Ok(c) => c.into_inner(),
            // A wrong code: the form again, the error beside the field.
            Err(s) if s.code() == Code::InvalidArgument && valid_id(&factor_id) => {
                return Ok(totp_page(
                    &visit,
                    StatusCode::BAD_REQUEST,
                    bound,
                    factor_id,
                    None,
                    String::new(),
                    Some(
                        "That code is not the one your app shows now: enter the current six digits."
                            .to_owned(),
                    ),
                ));
            }
            Err(s) => return Ok(refused(oidc, USER_SERVICE, &s)),
        };
        if confirmed.recovery_codes.is_empty() {
            return Ok(Answer::redirect(format!("{ACCOUNT_PATH}?done=totp-added")));
        }
        Ok(codes_page(
            &visit.oidc,
            "Your recovery codes",
            Some("Your authenticator app is set up.".to_owned()),
            confirmed.recovery_codes,
        ))
    })
    .await
}
