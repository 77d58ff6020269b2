//! The account area's passkeys: added from the page (the gateway's passkey
//! script asks the browser for one, with the options of a ceremony the page
//! began), and any factor renamed.

use super::{ACCOUNT_PATH, Acting, USER_SERVICE, as_user, codes_page, posted, refused, valid_id};
use crate::oidc::{Shared, Visit, render::Answer, respond};
use axum::body::Bytes;
use std::net::IpAddr;
use suite_proto::user::{
    FinishPasskeyRegistrationRequest, RenameFactorRequest, StartPasskeyRegistrationRequest,
};

pub const PASSKEY_PATH: &str = "/account/passkeys";
pub const RENAME_FACTOR_PATH: &str = "/account/factors/rename";

/// A passkey registration for the page: its ceremony and the browser's
/// options, or nothing when none can be begun now (passkeys off, or the
/// user has a factor and this browser did not sign in with one: the page
/// says so beside the other changes).
pub(super) async fn registration(
    oidc: &Shared,
    acting: &Acting,
    client: IpAddr,
) -> Option<(String, String)> {
    let started = oidc
        .users()
        .start_passkey_registration(as_user(
            oidc,
            acting,
            StartPasskeyRegistrationRequest {
                user_id: "me".into(),
                name: String::new(),
            },
            client,
        ))
        .await;
    match started {
        Ok(r) => {
            let r = r.into_inner();
            Some((r.ceremony, r.options_json))
        }
        Err(status) => {
            tracing::debug!(code = ?status.code(), "no passkey registration on the account page");
            None
        }
    }
}

/// `POST /account/passkeys`: FinishPasskeyRegistration with the browser's
/// new credential; a first factor's recovery codes, shown this once.
pub async fn add_passkey(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form, _, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let name = form.text("name").trim().to_owned();
        let call = oidc
            .users()
            .finish_passkey_registration(as_user(
                oidc,
                &acting,
                FinishPasskeyRegistrationRequest {
                    user_id: "me".into(),
                    ceremony: form.text("ceremony"),
                    credential_json: form.text("credential"),
                },
                client,
            ))
            .await;
        let added = match call {
            Ok(r) => r.into_inner(),
            Err(s) => return Ok(refused(oidc, USER_SERVICE, &s)),
        };
        // The name typed beside the button, if any (the ceremony began
        // before it was typed).
        if let Some(factor) = added.factor.as_ref()
            && !name.is_empty()
            && valid_id(&factor.id)
        {
            let renamed = oidc
                .users()
                .rename_factor(as_user(
                    oidc,
                    &acting,
                    RenameFactorRequest {
                        user_id: "me".into(),
                        factor_id: factor.id.clone(),
                        name,
                    },
                    client,
                ))
                .await;
            if let Err(s) = renamed {
                tracing::info!(code = ?s.code(), "a new passkey kept its default name");
            }
        }
        Ok(if added.recovery_codes.is_empty() {
            Answer::redirect(format!("{ACCOUNT_PATH}?done=passkey-added"))
        } else {
            codes_page(
                oidc,
                "Your passkey is added",
                Some(
                    "Keep these recovery codes somewhere safe: each signs you in once if you \
                     lose your passkey. They are shown only now."
                        .to_owned(),
                ),
                added.recovery_codes,
            )
        })
    })
    .await
}

/// `POST /account/factors/rename`: RenameFactor, then back to the account area.
pub async fn rename_factor(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form, _, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let call = oidc
            .users()
            .rename_factor(as_user(
                oidc,
                &acting,
                RenameFactorRequest {
                    user_id: "me".into(),
                    factor_id: form.text("factor_id"),
                    name: form.text("name"),
                },
                client,
            ))
            .await;
        Ok(match call {
            Ok(_) => Answer::redirect(format!("{ACCOUNT_PATH}?done=factor-renamed")),
            Err(s) => refused(oidc, USER_SERVICE, &s),
        })
    })
    .await
}
