//! The account area's personal access tokens (`suite.auth.v1.TokenService`
//! on the auth channel): listed with their prefixes (never a secret),
//! created from a form (a name, scopes and an expiry; the secret shown this
//! once) and revoked. The account token is first-party and without the
//! admin role, so the page offers only the user scopes.

use super::{ACCOUNT_PATH, AUTH_SERVICE, Acting, Said, as_user, overview_with, posted, refused};
use crate::oidc::{
    Shared, Visit,
    account::violations,
    pages::failed_call,
    render::{self, Answer, Chrome, chrome},
    respond,
};
use askama::Template;
use axum::body::Bytes;
use http::StatusCode;
use std::net::IpAddr;
use suite_proto::{
    auth::{
        CreatePersonalAccessTokenRequest, ListPersonalAccessTokensRequest, PersonalAccessToken,
        RevokePersonalAccessTokenRequest, token_service_client::TokenServiceClient,
    },
    time::{from_timestamp, now, to_timestamp},
};
use tonic::Code;

/// Creates a token (the form on the account page).
pub const TOKENS_PATH: &str = "/account/tokens";
/// Revokes one of the user's tokens.
pub const REVOKE_TOKEN_PATH: &str = "/account/tokens/revoke";

/// The longest name the service takes (in characters).
const MAX_NAME_CHARS: usize = 100;

/// The scopes the page offers, with the checkbox that asks for each.
const SCOPES: [(&str, &str); 2] = [
    ("user:read", "scope_user_read"),
    ("user:write", "scope_user_write"),
];

/// The expiries the page offers, in days, and how it names them.
const EXPIRIES: [(u32, &str); 4] = [
    (7, "7 days"),
    (30, "30 days"),
    (90, "90 days"),
    (365, "1 year"),
];

/// The expiry selected when nothing was chosen.
const DEFAULT_DAYS: u32 = 30;

/// A personal access token, as the page lists it.
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created: String,
    pub expires: String,
    pub last_used: Option<String>,
}

/// A scope's checkbox on the form.
pub struct ScopeBox {
    pub scope: &'static str,
    pub field: &'static str,
    pub checked: bool,
}

/// An expiry's option on the form.
pub struct ExpiryOption {
    pub days: u32,
    pub label: &'static str,
    pub selected: bool,
}

/// The creation form as the page shows it: empty, or as sent, with what
/// is wrong beside each field.
pub struct TokenForm {
    pub name: String,
    pub scopes: Vec<ScopeBox>,
    pub expiries: Vec<ExpiryOption>,
    pub name_error: Option<String>,
    pub scopes_error: Option<String>,
    pub expiry_error: Option<String>,
}

impl TokenForm {
    fn new(name: String, scopes: &[&str], days: u32) -> Self {
        Self {
            name,
            scopes: SCOPES
                .iter()
                .map(|&(scope, field)| ScopeBox {
                    scope,
                    field,
                    checked: scopes.contains(&scope),
                })
                .collect(),
            expiries: EXPIRIES
                .iter()
                .map(|&(d, label)| ExpiryOption {
                    days: d,
                    label,
                    selected: d == days,
                })
                .collect(),
            name_error: None,
            scopes_error: None,
            expiry_error: None,
        }
    }

    /// Whether something on the form is wrong (the page then says so).
    pub fn has_error(&self) -> bool {
        self.name_error.is_some() || self.scopes_error.is_some() || self.expiry_error.is_some()
    }
}

impl Default for TokenForm {
    fn default() -> Self {
        Self::new(String::new(), &[], DEFAULT_DAYS)
    }
}

/// A new token, its secret shown this once.
#[derive(Template)]
#[template(path = "account_token.html")]
pub struct NewTokenTemplate {
    pub chrome: Chrome,
    pub name: String,
    pub scopes: String,
    pub expires: String,
    pub secret: String,
    pub back: &'static str,
}

/// A TokenService client on the auth channel, traced.
fn token_service(oidc: &Shared) -> TokenServiceClient<suite_telemetry::grpc_client::TracedChannel> {
    TokenServiceClient::new(oidc.trace.wrap(oidc.auth.channel()))
}

fn token_row(t: PersonalAccessToken) -> TokenRow {
    TokenRow {
        created: when!(t.create_time).unwrap_or_default(),
        expires: when!(t.expire_time).unwrap_or_default(),
        last_used: when!(t.last_use_time),
        scopes: t.scopes.join(", "),
        id: t.id,
        name: t.name,
        prefix: t.prefix,
    }
}

/// The user's tokens, newest first.
pub(super) async fn list(
    oidc: &Shared,
    acting: &Acting,
    client: IpAddr,
) -> Result<Vec<TokenRow>, tonic::Status> {
    let listed = token_service(oidc)
        .list_personal_access_tokens(as_user(
            oidc,
            acting,
            ListPersonalAccessTokensRequest {
                user_id: String::new(),
            },
            client,
        ))
        .await?
        .into_inner();
    Ok(listed.tokens.into_iter().map(token_row).collect())
}

/// The form as sent, and what the gateway already knows is wrong with it
/// (the service checks the rest).
fn read_form(form: &crate::oidc::form::Params) -> (TokenForm, u32) {
    let name = form.text("name").trim().to_owned();
    let scopes: Vec<&str> = SCOPES
        .iter()
        .filter(|(_, field)| form.has(field))
        .map(|&(scope, _)| scope)
        .collect();
    let days = form
        .get("expires_in_days")
        .and_then(|d| d.parse::<u32>().ok())
        .filter(|d| EXPIRIES.iter().any(|&(e, _)| e == *d));
    let mut sent = TokenForm::new(
        name.chars().take(MAX_NAME_CHARS).collect(),
        &scopes,
        days.unwrap_or(DEFAULT_DAYS),
    );
    if name.is_empty() {
        sent.name_error = Some("Name the token, e.g. “ci deploy”.".to_owned());
    } else if name.chars().count() > MAX_NAME_CHARS {
        sent.name_error = Some(format!(
            "The name is too long: at most {MAX_NAME_CHARS} characters."
        ));
    } else if name.chars().any(char::is_control) {
        sent.name_error = Some("The name must not contain control characters.".to_owned());
    }
    if scopes.is_empty() {
        sent.scopes_error = Some("Choose at least one scope.".to_owned());
    }
    if days.is_none() {
        sent.expiry_error = Some("Choose when the token expires.".to_owned());
    }
    (sent, days.unwrap_or(DEFAULT_DAYS))
}

/// The service's refusal of a form, beside the fields it names.
fn refusal_on_form(sent: &mut TokenForm, status: &tonic::Status) {
    let mut placed = false;
    for (field, why) in violations(status) {
        let (slot, what) = match field.as_str() {
            "name" => (&mut sent.name_error, "The name"),
            "scopes" => (&mut sent.scopes_error, "The scopes:"),
            "expire_time" => (&mut sent.expiry_error, "The expiry"),
            _ => continue,
        };
        *slot = Some(format!("{what} {why}."));
        placed = true;
    }
    if !placed {
        sent.name_error = Some(status.message().to_owned());
    }
}

/// `POST /account/tokens`: CreatePersonalAccessToken for the user, its
/// secret shown this once; a form with something wrong comes back with
/// what, beside the field.
pub async fn create_token(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form, bound, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let (mut sent, days) = read_form(&form);
        let again = |sent: TokenForm, bound| {
            overview_with(
                &visit,
                client,
                &acting,
                bound,
                StatusCode::BAD_REQUEST,
                Said {
                    token_form: sent,
                    ..Said::default()
                },
            )
        };
        if sent.has_error() {
            return Ok(again(sent, bound).await);
        }
        let scopes: Vec<String> = sent
            .scopes
            .iter()
            .filter(|s| s.checked)
            .map(|s| s.scope.to_owned())
            .collect();
        let mut expire = to_timestamp(now());
        expire.seconds += i64::from(days) * 86_400;
        let call = token_service(oidc)
            .create_personal_access_token(as_user(
                oidc,
                &acting,
                CreatePersonalAccessTokenRequest {
                    name: sent.name.clone(),
                    scopes,
                    expire_time: Some(expire),
                    user_id: String::new(),
                },
                client,
            ))
            .await;
        let created = match call {
            Ok(c) => c.into_inner(),
            Err(s) if s.code() == Code::InvalidArgument => {
                refusal_on_form(&mut sent, &s);
                return Ok(again(sent, bound).await);
            }
            Err(s) => return Ok(refused(oidc, AUTH_SERVICE, &s)),
        };
        let Some(token) = created.token else {
            return Ok(failed_call(
                oidc,
                AUTH_SERVICE,
                &tonic::Status::internal("a new token without its description"),
            ));
        };
        let row = token_row(token);
        Ok(render::page(
            StatusCode::OK,
            &NewTokenTemplate {
                chrome: chrome(oidc),
                name: row.name,
                scopes: row.scopes,
                expires: row.expires,
                secret: created.secret,
                back: ACCOUNT_PATH,
            },
            None,
        ))
    })
    .await
}

/// `POST /account/tokens/revoke`: RevokePersonalAccessToken of one of the
/// user's tokens (one already gone is as good), then back to the account area.
pub async fn revoke_token(visit: Visit, body: Bytes) -> Answer {
    respond(async {
        let (client, form, _, acting) = posted(&visit, &body).await?;
        let oidc = &visit.oidc;
        let call = token_service(oidc)
            .revoke_personal_access_token(as_user(
                oidc,
                &acting,
                RevokePersonalAccessTokenRequest {
                    id: form.text("token_id"),
                },
                client,
            ))
            .await;
        Ok(match call {
            Ok(_) => Answer::redirect(format!("{ACCOUNT_PATH}?done=token-revoked")),
            Err(s) if s.code() == Code::NotFound => {
                Answer::redirect(format!("{ACCOUNT_PATH}?done=token-revoked"))
            }
            Err(s) => refused(oidc, AUTH_SERVICE, &s),
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::form::Params;

    fn chrome() -> Chrome {
        Chrome {
            product: "Suite".into(),
            has_logo: false,
        }
    }

    #[test]
    fn the_new_tokens_page_shows_the_secret_once_and_escapes_the_name() {
        let page = NewTokenTemplate {
            chrome: chrome(),
            name: "<script>alert(1)</script>".into(),
            scopes: "user:read".into(),
            expires: "2027-01-06 19:00 UTC".into(),
            secret: "suitepat_AbCd0123".into(),
            back: ACCOUNT_PATH,
        }
        .render()
        .expect("rendered");
        assert!(!page.contains("<script"), "{page}");
        assert!(
            page.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
            "{page}"
        );
        assert!(
            page.contains(r#"<code id="token-secret">suitepat_AbCd0123</code>"#),
            "{page}"
        );
        assert!(page.contains("will not be shown again"), "{page}");
        assert!(page.contains("Authorization: Bearer"), "{page}");
        assert!(page.contains(r#"<a href="/account">"#), "{page}");
    }

    #[test]
    fn a_form_without_a_name_or_a_scope_says_so_beside_each_field() {
        let form = Params::parse(b"name=%20&expires_in_days=12").expect("parsed");
        let (sent, days) = read_form(&form);
        assert!(sent.name_error.is_some());
        assert!(sent.scopes_error.is_some());
        assert!(sent.expiry_error.is_some());
        assert_eq!(days, DEFAULT_DAYS);

        let form =
            Params::parse(b"name=ci&scope_user_read=on&expires_in_days=365").expect("parsed");
        let (sent, days) = read_form(&form);
        assert!(!sent.has_error());
        assert_eq!(days, 365);
        assert_eq!(sent.name, "ci");
        let checked: Vec<_> = sent
            .scopes
            .iter()
            .filter(|s| s.checked)
            .map(|s| s.scope)
            .collect();
        assert_eq!(checked, ["user:read"]);
        assert!(sent.expiries.iter().any(|e| e.days == 365 && e.selected));
    }

    #[test]
    fn the_services_refusal_lands_beside_its_field() {
        let mut sent = TokenForm::default();
        refusal_on_form(&mut sent, &tonic::Status::invalid_argument("no such scope"));
        assert_eq!(sent.name_error.as_deref(), Some("no such scope"));
    }
}
