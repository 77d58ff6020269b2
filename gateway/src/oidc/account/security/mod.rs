//! The account area of the user behind the browser session (`/account`):
//! their second factors (an authenticator app set up, confirmed with a
//! first code, removed), their recovery codes (made anew, shown once),
//! where they are signed in, and signing out everywhere.
//!
//! The gateway acts for the user with a short-lived access token that the
//! auth service mints for the live browser session
//! (`OAuthService.AccountToken`), sent as the bearer of the page's calls to
//! the user and auth services and never to the browser: the services
//! decide, as they do for the REST API (a change of factors needs a recent
//! sign-in with one; the page then offers to sign in again with it).
//!
//! Without a live browser session the pages send the browser to
//! [`SIGN_IN_PATH`], which starts the provider's own sign-in for them
//! (`OAuthService.AccountSignIn`: an authorization request of its
//! first-party account client, on the sign-in pages of every other
//! application); it ends at [`SIGNED_IN_PATH`], which leads back here.
//!
//! The forms carry a CSRF token derived from the browser's binding cookie
//! and are refused when the browser says another site sent them; each
//! `POST` is counted in the strict bucket, each `GET` in the general one.

use super::{Link, MessageTemplate, from_another_site};
use crate::{
    contract::routes::RateClass,
    oidc::{
        Shared, Visit, cookies,
        csrf::{Bound, BoundForm},
        form::Params,
        pages::{admit_params, binding, failed, failed_call, session, step_answer},
        render::{self, Answer, Chrome, chrome, error_page},
        respond,
    },
};
use askama::Template;
use axum::{body::Bytes, extract::RawQuery};
use http::StatusCode;
use std::net::IpAddr;
use suite_proto::{
    auth::{
        AccountSignInRequest, AccountTokenRequest, ListSessionsRequest, Session,
        auth_service_client::AuthServiceClient,
    },
    time::from_timestamp,
    user::{DeleteFactorRequest, Factor, ListFactorsRequest, RegenerateRecoveryCodesRequest},
};
use tonic::{Code, metadata::MetadataValue};

mod passkeys;
mod sessions;
mod totp;
pub use passkeys::{PASSKEY_PATH, RENAME_FACTOR_PATH, add_passkey, rename_factor};
pub use sessions::{end_session, sign_out_everywhere};
pub use totp::{confirm_totp, enroll_totp};

/// The account area and its forms.
pub const ACCOUNT_PATH: &str = "/account";
/// Starts a sign-in for the account area (`?second_factor=1`: again, with
/// the second factor).
pub const SIGN_IN_PATH: &str = "/account/signin";
/// Where the account area's sign-in ends (the account client's redirect URI).
pub const SIGNED_IN_PATH: &str = "/account/signed-in";
pub const TOTP_PATH: &str = "/account/totp";
pub const TOTP_CONFIRM_PATH: &str = "/account/totp/confirm";
pub const DELETE_FACTOR_PATH: &str = "/account/factors/delete";
pub const RECOVERY_CODES_PATH: &str = "/account/recovery-codes";
pub const SIGN_OUT_EVERYWHERE_PATH: &str = "/account/sign-out-everywhere";
pub const END_SESSION_PATH: &str = "/account/sessions/end";

/// The account area's forms, guarded by the browser's binding.
const ACCOUNT_FORM: BoundForm = BoundForm {
    label: "account",
    security_event: "account_form_forgery",
};

/// The name of the services the pages call, for failed calls' logs.
const USER_SERVICE: &str = "UserService";
const AUTH_SERVICE: &str = "AuthService";

/// The most sessions listed.
const SESSIONS_SHOWN: i32 = 100;

/// The account area's page.
#[derive(Template)]
#[template(path = "account_security.html")]
pub struct SecurityTemplate {
    pub chrome: Chrome,
    pub csrf_token: String,
    pub username: String,
    /// This browser signed in with a second factor.
    pub with_second_factor: bool,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub factors: Vec<FactorRow>,
    pub has_factor: bool,
    pub recovery_codes_left: i32,
    pub sessions: Vec<SessionRow>,
    pub more_sessions: bool,
    /// A passkey registration ceremony and its options (JSON); empty: no
    /// passkey may be added now (off, or a step-up is needed first).
    pub passkey_ceremony: String,
    pub passkey_options: String,
    pub tokens: Vec<TokenRow>,
    pub token_form: TokenForm,
}

/// A second factor, as the page lists it.
pub struct FactorRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub confirmed: bool,
    pub added: String,
    pub last_used: Option<String>,
}

/// A session, as the page lists it.
pub struct SessionRow {
    pub id: String,
    pub user_agent: String,
    pub ip_address: String,
    pub signed_in: String,
    pub last_used: String,
}

/// An authenticator being set up: its QR code and key (on the first
/// showing), and the form that confirms it with a first code.
#[derive(Template)]
#[template(path = "account_totp.html")]
pub struct TotpTemplate {
    pub chrome: Chrome,
    pub csrf_token: String,
    pub factor_id: String,
    /// The QR code, redrawn by [`super::qr::clean_svg`]: embedded as is.
    pub qr_svg: Option<String>,
    pub secret: String,
    pub code_error: Option<String>,
    pub action: &'static str,
    pub back: &'static str,
}

/// Recovery codes, shown this once.
#[derive(Template)]
#[template(path = "account_codes.html")]
pub struct CodesTemplate {
    pub chrome: Chrome,
    pub heading: String,
    pub lead: Option<String>,
    pub codes: Vec<String>,
    pub back: &'static str,
}

/// The user the browser session is, as the pages act for them.
struct Acting {
    /// The bearer of the pages' calls: never sent to the browser.
    token: String,
    username: String,
    /// How the browser session signed in (RFC 8176 values).
    amr: Vec<String>,
}

/// Where a page goes when the browser is not signed in: the sign-in,
/// forgetting a session cookie that names no live session.
fn to_sign_in(clear_session: bool) -> Answer {
    let mut answer = Answer::redirect(SIGN_IN_PATH.to_owned());
    if clear_session {
        answer.cookies.push(cookies::clear(cookies::SESSION));
    }
    answer
}

/// The user behind the browser session, or the answer that sends the
/// browser to sign in (or the error page of a failed call).
async fn acting(visit: &Visit, client: IpAddr) -> Result<Acting, Answer> {
    let cookie = session(&visit.headers);
    if cookie.is_empty() {
        return Err(to_sign_in(false));
    }
    let oidc = &visit.oidc;
    let answer = oidc
        .client()
        .account_token(oidc.request(
            AccountTokenRequest {
                browser_session: cookie,
            },
            client,
        ))
        .await
        .map_err(|status| failed(oidc, &status))?
        .into_inner();
    if answer.access_token.is_empty() {
        return Err(to_sign_in(answer.clear_session));
    }
    Ok(Acting {
        token: answer.access_token,
        username: answer.username,
        amr: answer.amr,
    })
}

/// A request to a service on behalf of `acting`.
fn as_user<T>(oidc: &Shared, acting: &Acting, message: T, client: IpAddr) -> tonic::Request<T> {
    let mut request = oidc.request(message, client);
    match MetadataValue::try_from(format!("Bearer {}", acting.token)) {
        Ok(bearer) => {
            request.metadata_mut().insert("authorization", bearer);
        }
        Err(_) => tracing::error!("the account token is no header value"),
    }
    request
}

/// An AuthService client on the auth channel, traced.
fn auth_service(oidc: &Shared) -> AuthServiceClient<suite_telemetry::grpc_client::TracedChannel> {
    AuthServiceClient::new(oidc.trace.wrap(oidc.auth.channel()))
}

/// Whether a refusal asks for a recent sign-in with the second factor.
fn needs_step_up(status: &tonic::Status) -> bool {
    status.code() == Code::FailedPrecondition
        && status.message().contains("second factor")
        && status.message().contains("sign in again")
}

/// The page that says a change needs a recent sign-in with the second
/// factor, and offers one.
fn step_up_page(oidc: &Shared) -> Answer {
    render::page(
        StatusCode::FORBIDDEN,
        &MessageTemplate {
            chrome: chrome(oidc),
            heading: "Sign in again with your second factor".to_owned(),
            lines: vec![
                "This change needs a recent sign-in with your second factor.".to_owned(),
                "Sign in again with your password and a code from your authenticator app, \
                 then make the change again."
                    .to_owned(),
            ],
            alert: true,
            links: vec![
                Link {
                    href: format!("{SIGN_IN_PATH}?second_factor=1"),
                    text: "Sign in again with your second factor".to_owned(),
                },
                Link {
                    href: ACCOUNT_PATH.to_owned(),
                    text: "Back to your account".to_owned(),
                },
            ],
            offer_sign_in: false,
            sign_in_url: None,
        },
        None,
    )
}

/// The answer to a failed call of a change: the step-up page, or the error page.
fn refused(oidc: &Shared, service: &str, status: &tonic::Status) -> Answer {
    if needs_step_up(status) {
        return step_up_page(oidc);
    }
    failed_call(oidc, service, status)
}

/// A time of the wire (an optional `Timestamp`) as the pages show it.
macro_rules! when {
    ($t:expr) => {
        $t.as_ref()
            .and_then(from_timestamp)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
    };
}

// After `when!`, which it uses.
mod tokens;
pub use tokens::{REVOKE_TOKEN_PATH, TOKENS_PATH, TokenForm, TokenRow, create_token, revoke_token};

fn factor_row(f: Factor) -> FactorRow {
    FactorRow {
        kind: match f.kind.as_str() {
            "totp" => "authenticator app".to_owned(),
            other => other.to_owned(),
        },
        added: when!(f.create_time).unwrap_or_default(),
        last_used: when!(f.last_use_time),
        id: f.id,
        name: f.name,
        confirmed: f.confirmed,
    }
}

fn session_row(s: Session) -> SessionRow {
    SessionRow {
        signed_in: when!(s.create_time).unwrap_or_default(),
        last_used: when!(s.last_use_time).unwrap_or_default(),
        user_agent: s.user_agent.chars().take(120).collect(),
        id: s.id,
        ip_address: s.ip_address,
    }
}

/// The account area's page, as it is now, with a notice or an error.
async fn overview(
    visit: &Visit,
    client: IpAddr,
    acting: &Acting,
    bound: Bound,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Answer {
    let said = Said {
        notice,
        error,
        ..Said::default()
    };
    overview_with(visit, client, acting, bound, status, said).await
}

/// What the page says beside its lists: a notice, an error, and the token
/// form as sent (with what is wrong on it).
#[derive(Default)]
struct Said {
    notice: Option<String>,
    error: Option<String>,
    token_form: TokenForm,
}

/// The account area's page, as it is now, saying `said`.
async fn overview_with(
    visit: &Visit,
    client: IpAddr,
    acting: &Acting,
    bound: Bound,
    status: StatusCode,
    said: Said,
) -> Answer {
    let oidc = &visit.oidc;
    let factors = async {
        oidc.users()
            .list_factors(as_user(
                oidc,
                acting,
                ListFactorsRequest {
                    user_id: "me".into(),
                },
                client,
            ))
            .await
    };
    let sessions = async {
        auth_service(oidc)
            .list_sessions(as_user(
                oidc,
                acting,
                ListSessionsRequest {
                    page_size: SESSIONS_SHOWN,
                    ..ListSessionsRequest::default()
                },
                client,
            ))
            .await
    };
    let (factors, sessions, passkey, tokens) = tokio::join!(
        factors,
        sessions,
        passkeys::registration(oidc, acting, client),
        tokens::list(oidc, acting, client)
    );
    let (passkey_ceremony, passkey_options) = passkey.unwrap_or_default();
    let factors = match factors {
        Ok(f) => f.into_inner(),
        Err(s) => return failed_call(oidc, USER_SERVICE, &s),
    };
    let sessions = match sessions {
        Ok(s) => s.into_inner(),
        Err(s) => return failed_call(oidc, AUTH_SERVICE, &s),
    };
    let tokens = match tokens {
        Ok(t) => t,
        Err(s) => return failed_call(oidc, AUTH_SERVICE, &s),
    };
    let page = SecurityTemplate {
        chrome: chrome(oidc),
        csrf_token: bound.csrf_token,
        username: acting.username.clone(),
        with_second_factor: acting.amr.iter().any(|m| m == "mfa"),
        notice: said.notice,
        error: said.error,
        has_factor: factors.factors.iter().any(|f| f.confirmed),
        recovery_codes_left: factors.recovery_codes_left,
        factors: factors.factors.into_iter().map(factor_row).collect(),
        more_sessions: !sessions.next_page_token.is_empty(),
        sessions: sessions.sessions.into_iter().map(session_row).collect(),
        passkey_ceremony,
        passkey_options,
        tokens,
        token_form: said.token_form,
    };
    let mut answer = render::page(status, &page, None);
    // The passkey form runs the gateway's one script.
    answer.scripts = !page.passkey_options.is_empty();
    answer.cookies.extend(bound.new_binding);
    answer
}

/// What a `done` parameter (a change's redirect back here) says.
fn done_notice(params: &Params) -> Option<String> {
    let notice = match params.get("done")? {
        "totp-added" => "Your authenticator app is set up.",
        "factor-removed" => "The second factor was removed.",
        "session-ended" => "That session was signed out.",
        "passkey-added" => "Your passkey is added.",
        "factor-renamed" => "The second factor was renamed.",
        "token-revoked" => "The token was revoked.",
        _ => return None,
    };
    Some(notice.to_owned())
}

/// `GET /account`: the account area, or the way to sign in to it.
pub async fn account_page(visit: Visit, RawQuery(query): RawQuery) -> Answer {
    respond(async {
        let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
        let (client, params) = admit_params(&visit, RateClass::General, Ok(params)).await?;
        let acting = acting(&visit, client).await?;
        let bound = ACCOUNT_FORM.bind(&visit.headers);
        Ok(overview(
            &visit,
            client,
            &acting,
            bound,
            StatusCode::OK,
            done_notice(&params),
            None,
        )
        .await)
    })
    .await
}

/// `GET /account/signin`: the sign-in of the account area (with
/// `second_factor=1`, again with the second factor).
pub async fn sign_in(visit: Visit, RawQuery(query): RawQuery) -> Answer {
    respond(async {
        let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
        let (client, params) = admit_params(&visit, RateClass::General, Ok(params)).await?;
        let (browser_binding, new_binding) = binding(&visit.headers);
        let oidc = &visit.oidc;
        let request = AccountSignInRequest {
            browser_session: session(&visit.headers),
            browser_binding,
            second_factor: params.get("second_factor") == Some("1"),
        };
        let mut answer = match oidc
            .client()
            .account_sign_in(oidc.request(request, client))
            .await
        {
            Ok(a) => step_answer(oidc, a.into_inner().step, None, ""),
            Err(status) => failed(oidc, &status),
        };
        answer.cookies.extend(new_binding);
        Ok(answer)
    })
    .await
}

/// `GET /account/signed-in`: the end of the account area's sign-in, back to
/// it. (Its code is for nobody: the provider never lets it be redeemed.)
pub async fn signed_in(visit: Visit, RawQuery(query): RawQuery) -> Answer {
    respond(async {
        let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
        let (_, params) = admit_params(&visit, RateClass::General, Ok(params)).await?;
        if let Some(error) = params.get("error") {
            // Not back to the account area: it would start the sign-in
            // again. The provider's words are not repeated: anyone can
            // link here with words of their own.
            let why = match error {
                "access_denied" => "The sign-in was cancelled.",
                "login_required" | "interaction_required" => "You are not signed in.",
                _ => "Something went wrong during the sign-in.",
            };
            return Ok(render::page(
                StatusCode::BAD_REQUEST,
                &MessageTemplate {
                    chrome: chrome(&visit.oidc),
                    heading: "The sign-in did not finish".to_owned(),
                    lines: vec![why.to_owned()],
                    alert: true,
                    links: vec![Link {
                        href: ACCOUNT_PATH.to_owned(),
                        text: "Try again".to_owned(),
                    }],
                    offer_sign_in: false,
                    sign_in_url: None,
                },
                None,
            ));
        }
        Ok(Answer::redirect(ACCOUNT_PATH.to_owned()))
    })
    .await
}

/// A posted form of the account area: admitted, from this site, with this
/// browser's CSRF token, for the signed-in user. The client's address, the
/// form, the browser's binding and the user.
async fn posted(visit: &Visit, body: &[u8]) -> Result<(IpAddr, Params, Bound, Acting), Answer> {
    let params = Params::from_body(&visit.headers, body);
    let (client, form) = admit_params(visit, RateClass::Auth, params).await?;
    if from_another_site(&visit.headers) {
        tracing::warn!(
            security_event = "account_form_forgery",
            "an account area's form came from another site"
        );
        return Err(error_page(
            &visit.oidc,
            StatusCode::FORBIDDEN,
            "access_denied",
            "This form was sent from another site. Open your account page again.",
            None,
        ));
    }
    let bound = ACCOUNT_FORM
        .check(&visit.headers, &form.text("csrf_token"))
        .map_err(|bound| {
            let mut again = Answer::redirect(ACCOUNT_PATH.to_owned());
            again.cookies.extend(bound.new_binding);
            again
        })?;
    let acting = acting(visit, client).await?;
    Ok((client, form, bound, acting))
}

/// A factor id as the form carries it back: a UUID's characters only (it
/// goes back into the form).
fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 36 && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

fn codes_page(oidc: &Shared, heading: &str, lead: Option<String>, codes: Vec<String>) -> Answer {
    render::page(
        StatusCode::OK,
        &CodesTemplate {
            chrome: chrome(oidc),
            heading: heading.to_owned(),
            lead,
            codes,
            back: ACCOUNT_PATH,
        },
        None,
    )
}

/// `POST /account/factors/delete`: DeleteFactor (step-up asked for by the
/// service), then back to the account area.
pub async fn delete_factor(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form, _, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let call = oidc
            .users()
            .delete_factor(as_user(
                oidc,
                &acting,
                DeleteFactorRequest {
                    user_id: "me".into(),
                    factor_id: form.text("factor_id"),
                },
                client,
            ))
            .await;
        Ok(match call {
            Ok(_) => Answer::redirect(format!("{ACCOUNT_PATH}?done=factor-removed")),
            Err(s) => refused(oidc, USER_SERVICE, &s),
        })
    })
    .await
}

/// `POST /account/recovery-codes`: RegenerateRecoveryCodes (step-up asked
/// for by the service), the new codes shown this once.
pub async fn regenerate_recovery_codes(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, _, _, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let call = oidc
            .users()
            .regenerate_recovery_codes(as_user(
                oidc,
                &acting,
                RegenerateRecoveryCodesRequest {
                    user_id: "me".into(),
                },
                client,
            ))
            .await;
        Ok(match call {
            Ok(r) => codes_page(
                oidc,
                "Your new recovery codes",
                None,
                r.into_inner().recovery_codes,
            ),
            Err(s) => refused(oidc, USER_SERVICE, &s),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::totp::group;
    use super::*;

    #[test]
    fn only_the_services_step_up_refusal_offers_a_sign_in() {
        let step_up = tonic::Status::failed_precondition(
            "this change needs a recent sign-in with your second factor: sign in again",
        );
        assert!(needs_step_up(&step_up));
        for other in [
            tonic::Status::failed_precondition(
                "second factors are off: the service has no FACTOR_KEY",
            ),
            tonic::Status::permission_denied("sign in again with your second factor"),
        ] {
            assert!(!needs_step_up(&other), "{other:?}");
        }
    }

    fn chrome() -> Chrome {
        Chrome {
            product: "Suite".into(),
            has_logo: false,
        }
    }

    #[test]
    fn the_setup_page_embeds_only_a_redrawn_qr_code_and_escapes_the_rest() {
        let drawn = r##"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="8" height="8" viewBox="0 0 8 8" shape-rendering="crispEdges"><rect x="0" y="0" width="8" height="8" fill="#fff"/><path fill="#000" d="M0 0h1v1H0V0"/></svg>"##;
        let page = TotpTemplate {
            chrome: chrome(),
            csrf_token: "csrf\"1".into(),
            factor_id: "f-1".into(),
            qr_svg: super::super::qr::clean_svg(drawn),
            secret: group("JBSWY3DPEHPK3PXP"),
            code_error: None,
            action: TOTP_CONFIRM_PATH,
            back: ACCOUNT_PATH,
        }
        .render()
        .expect("rendered");
        assert!(page.contains(r#"<div class="qr"><svg xmlns="#), "{page}");
        assert!(page.contains(r#"<code id="secret">JBSW Y3DP EHPK 3PXP</code>"#));
        assert!(
            page.contains(r#"name="csrf_token" value="csrf&#34;1""#),
            "{page}"
        );
        assert!(page.contains(r#"<form method="post" action="/account/totp/confirm">"#));
        assert!(page.contains(r#"autocomplete="one-time-code""#));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn the_account_page_escapes_what_users_and_clients_named() {
        let page = SecurityTemplate {
            chrome: chrome(),
            csrf_token: "c".into(),
            username: "ada<b>".into(),
            with_second_factor: false,
            notice: None,
            error: None,
            factors: vec![FactorRow {
                id: "f-1".into(),
                name: "<i>phone</i>".into(),
                kind: "authenticator app".into(),
                confirmed: true,
                added: "2026-12-07 19:00 UTC".into(),
                last_used: None,
            }],
            has_factor: true,
            recovery_codes_left: 9,
            sessions: vec![SessionRow {
                id: "s-1".into(),
                user_agent: "<script>x</script>".into(),
                ip_address: "127.0.0.1".into(),
                signed_in: "2026-12-07 19:00 UTC".into(),
                last_used: "2026-12-07 19:05 UTC".into(),
            }],
            more_sessions: false,
            passkey_ceremony: String::new(),
            passkey_options: "{\"publicKey\":\"<x>\"}".into(),
            tokens: vec![TokenRow {
                id: "t-1".into(),
                name: "<script>ci</script>".into(),
                prefix: "suitepat_AbCd".into(),
                scopes: "user:read".into(),
                created: "2026-12-07 19:00 UTC".into(),
                expires: "2027-01-06 19:00 UTC".into(),
                last_used: None,
            }],
            token_form: TokenForm::default(),
        }
        .render()
        .expect("rendered");
        assert!(page.contains("ada&#60;b&#62;"), "{page}");
        // The passkey options go into an attribute, escaped.
        assert!(
            page.contains("data-passkey-options=\"{&#34;publicKey&#34;:&#34;&#60;x&#62;&#34;}\""),
            "{page}"
        );
        assert!(page.contains("&#60;i&#62;phone&#60;/i&#62;"), "{page}");
        assert!(
            page.contains("&#60;script&#62;ci&#60;/script&#62;"),
            "{page}"
        );
        assert!(page.contains("<code>suitepat_AbCd…</code>"), "{page}");
        assert!(page.contains("last used never"), "{page}");
        // The one script is the gateway's own; the user agent's is text.
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains(r#"<script src="/oauth2/assets/passkey.js" defer></script>"#));
        assert!(page.contains("9 recovery codes left"));
        assert!(page.contains(r#"<a href="/account/signin?second_factor=1">"#));
        for action in [
            DELETE_FACTOR_PATH,
            TOTP_PATH,
            RECOVERY_CODES_PATH,
            SIGN_OUT_EVERYWHERE_PATH,
            END_SESSION_PATH,
            TOKENS_PATH,
            REVOKE_TOKEN_PATH,
        ] {
            assert!(
                page.contains(&format!(r#"<form method="post" action="{action}">"#)),
                "{action}"
            );
        }
    }

    #[test]
    fn the_key_is_shown_in_groups_of_four() {
        assert_eq!(group("ABCDEFGHIJ"), "ABCD EFGH IJ");
        assert_eq!(group(""), "");
    }

    #[test]
    fn a_factor_id_goes_back_into_the_form_only_as_uuid_characters() {
        assert!(valid_id("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
        assert!(!valid_id(""));
        assert!(!valid_id("\"><script>"));
    }
}
