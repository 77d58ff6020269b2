//! The account pages that the user service's mail links to: confirming an
//! email address, undoing a change of address, asking for a password reset
//! link and choosing a new password. Each is a thin page over one
//! `suite.user.v1.UserService` call, in the sign-in pages' look and under
//! their policy (no script, no framing, forms only to this origin; every
//! answer `Cache-Control: no-store` and `Referrer-Policy: no-referrer`, as
//! [`Answer`] sets them: the token is in the URL).
//!
//! A link's `GET` never acts: mail scanners and link previews fetch links,
//! so the `GET` shows a form with the token, and the user's `POST` of it
//! acts (a `HEAD` is served as the `GET`, so it acts no more). A token that
//! is missing, too long, or that the service refuses (used, expired, or the
//! account changed since it was mailed) shows the "not valid any more" page,
//! with status 400 (the service's InvalidArgument, as the API answers it).
//!
//! The `POST`s are counted in the strict bucket, as password sign-ins are
//! (each tries a token or mails someone); the pages' `GET`s in the general
//! one. A `POST` that the browser says came from another site is refused;
//! the forgot-password form, which no secret guards, also carries a CSRF
//! token derived from the browser's binding cookie (as the device form does).
//!
//! Here what the pages share; [`email`] the two links about addresses,
//! [`password`] the forgotten password's form and the reset link's;
//! [`security`] the account area of the signed-in user (second factors,
//! recovery codes, sessions), behind the browser session.

pub mod email;
pub mod password;
pub mod qr;
pub mod security;

use super::{
    Shared, Visit,
    form::Params,
    pages::admit_params,
    render::{self, Answer, Chrome, chrome, error_page},
};
use crate::contract::routes::RateClass;
use askama::Template;
use http::{HeaderMap, StatusCode};
use std::net::IpAddr;
use tonic_types::StatusExt;

pub use email::{revert_email, revert_email_page, verify_email, verify_email_page};
pub use password::{forgot_password, forgot_password_page, reset_password, reset_password_page};

/// The pages' paths (the user service's mail links to the first three, and
/// to the fourth from the second's page).
pub const VERIFY_EMAIL_PATH: &str = "/account/verify-email";
pub const REVERT_EMAIL_PATH: &str = "/account/revert-email";
pub const RESET_PASSWORD_PATH: &str = "/account/reset-password";
pub const FORGOT_PASSWORD_PATH: &str = "/account/forgot-password";

/// The longest link token taken (the contract's `max_length` of every
/// `token` field): anything longer is no token the service issued.
const MAX_TOKEN_CHARS: usize = 128;

/// The name the service logs a failed call under.
const SERVICE: &str = "UserService";

/// A link to show on a message page.
pub struct Link {
    pub href: String,
    pub text: String,
}

/// A page that only tells: an outcome, or why a link did nothing.
#[derive(Template)]
#[template(path = "account_message.html")]
pub struct MessageTemplate {
    pub chrome: Chrome,
    pub heading: String,
    pub lines: Vec<String>,
    /// The first line is an error, announced as one.
    pub alert: bool,
    pub links: Vec<Link>,
    /// Ends with "Sign in" (a link if one is configured).
    pub offer_sign_in: bool,
    pub sign_in_url: Option<String>,
}

/// A message page; an error's (`status` not a success) announces its first line.
fn message(
    oidc: &Shared,
    status: StatusCode,
    heading: &str,
    lines: Vec<String>,
    links: Vec<Link>,
) -> Answer {
    render::page(
        status,
        &MessageTemplate {
            chrome: chrome(oidc),
            heading: heading.to_owned(),
            alert: !status.is_success(),
            lines,
            links,
            offer_sign_in: true,
            sign_in_url: oidc.branding.sign_in_url.clone(),
        },
        None,
    )
}

/// The page of a link that does nothing any more (or never did): 400.
/// A password reset link's page offers a new one.
fn not_valid(oidc: &Shared, offer_new_reset_link: bool) -> Answer {
    let links = if offer_new_reset_link {
        vec![Link {
            href: FORGOT_PASSWORD_PATH.to_owned(),
            text: "Ask for a new link".to_owned(),
        }]
    } else {
        Vec::new()
    };
    message(
        oidc,
        StatusCode::BAD_REQUEST,
        "This link is not valid any more",
        vec![
            "This link is not valid any more: it was used, it expired, or the account \
             changed since it was sent."
                .to_owned(),
            "Each link in our mail works once, for a limited time.".to_owned(),
        ],
        links,
    )
}

/// The link token among `params`, if it can be one: present, not longer than
/// any the service issues, and printable ASCII (it goes back into a form).
/// Whether it is valid is the service's to say.
fn link_token(params: &Params) -> Option<String> {
    params
        .get("token")
        .filter(|t| t.len() <= MAX_TOKEN_CHARS && t.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
}

/// The fields an InvalidArgument names (by their proto names), and what is wrong with each.
fn violations(status: &tonic::Status) -> Vec<(String, String)> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

/// True when the browser says (Fetch Metadata) that the request comes from
/// another site, or a sibling one: no form of another site may act here. A
/// request that says nothing (older browsers, other clients) is left to the
/// form's own guard.
fn from_another_site(headers: &HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.eq_ignore_ascii_case("cross-site") || v.eq_ignore_ascii_case("same-site")
        })
}

/// A page's `GET`, admitted to the general bucket: the query's parameters
/// (a query that cannot be read, a repeated token say, has no token).
async fn admit_query(visit: &Visit, query: Option<String>) -> Result<Params, Answer> {
    let params = Params::parse(query.unwrap_or_default().as_bytes()).unwrap_or_default();
    let (_, params) = admit_params(visit, RateClass::General, Ok(params)).await?;
    Ok(params)
}

/// A page's `POST`, admitted to the strict bucket and refused if another
/// site sent it: the client's address and the form.
async fn admit_form(visit: &Visit, body: &[u8]) -> Result<(IpAddr, Params), Answer> {
    let params = Params::from_body(&visit.headers, body);
    let admitted = admit_params(visit, RateClass::Auth, params).await?;
    if from_another_site(&visit.headers) {
        tracing::warn!(
            security_event = "account_form_forgery",
            "an account page's form came from another site"
        );
        return Err(error_page(
            &visit.oidc,
            StatusCode::FORBIDDEN,
            "access_denied",
            "This form was sent from another site. Open the link from your mail again.",
            None,
        ));
    }
    Ok(admitted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn a_link_token_is_present_short_and_printable() {
        let token = |q: &str| link_token(&Params::parse(q.as_bytes()).expect("parsed"));
        assert_eq!(token("token=abc-DEF_123").as_deref(), Some("abc-DEF_123"));
        assert_eq!(token(""), None);
        assert_eq!(token("token="), None);
        assert_eq!(token("token=a%20b"), None);
        assert_eq!(token("token=a%0Ab"), None);
        let long = "a".repeat(MAX_TOKEN_CHARS + 1);
        assert_eq!(token(&format!("token={long}")), None);
        let longest = "a".repeat(MAX_TOKEN_CHARS);
        assert_eq!(token(&format!("token={longest}")), Some(longest));
    }

    #[test]
    fn only_another_sites_form_is_refused() {
        let mut headers = HeaderMap::new();
        assert!(!from_another_site(&headers));
        for (value, refused) in [
            ("same-origin", false),
            ("none", false),
            ("cross-site", true),
            ("same-site", true),
        ] {
            headers.insert("sec-fetch-site", HeaderValue::from_static(value));
            assert_eq!(from_another_site(&headers), refused, "{value}");
        }
    }
}
