//! The pages and what every answer of the browser side carries: the
//! templates (compiled in by askama, which escapes every value), the
//! policy (no script, no framing, forms only to this origin and the
//! redirect's origin), the cookies and the error page.

use super::Shared;
use askama::Template;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use suite_proto::auth::ScopeDescription;

/// What every page shows around its content.
pub struct Chrome {
    pub product: String,
    pub has_logo: bool,
}

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignInTemplate {
    pub chrome: Chrome,
    pub request_id: String,
    pub csrf_token: String,
    pub redirect_origin: String,
    pub client_name: String,
    pub login: String,
    pub login_error: Option<String>,
    pub password_error: Option<String>,
    pub form_error: Option<String>,
    pub autofocus_password: bool,
    pub sign_up_url: Option<String>,
    /// A passwordless passkey ceremony, and its options (JSON; empty: no
    /// passkey on the page).
    pub passkey_ceremony: String,
    pub passkey_options: String,
}

/// The sign-in page's second step: the password was right, and the account
/// has a second factor. The form posts a code with the step's challenge.
#[derive(Template)]
#[template(path = "signin_factor.html")]
pub struct SignInFactorTemplate {
    pub chrome: Chrome,
    pub request_id: String,
    pub csrf_token: String,
    pub redirect_origin: String,
    pub client_name: String,
    pub challenge: String,
    /// A wrong or used code, or a wait: shown beside the code field.
    pub code_error: Option<String>,
    /// The options of the user's passkeys (JSON; empty: none).
    pub passkey_options: String,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentTemplate {
    pub chrome: Chrome,
    pub request_id: String,
    pub csrf_token: String,
    pub redirect_origin: String,
    pub client_name: String,
    pub username: String,
    pub scopes: Vec<ScopeDescription>,
    /// A device request's user code, to compare with the device's.
    pub user_code: String,
}

/// The device verification page: the user code's form.
#[derive(Template)]
#[template(path = "device.html")]
pub struct DeviceTemplate {
    pub chrome: Chrome,
    pub csrf_token: String,
    pub user_code: String,
    pub error: Option<String>,
}

/// The end of a device's verification.
#[derive(Template)]
#[template(path = "device_done.html")]
pub struct DeviceDoneTemplate {
    pub chrome: Chrome,
    pub client_name: String,
    pub approved: bool,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorTemplate {
    pub chrome: Chrome,
    pub error: String,
    pub description: String,
    pub retry_after_secs: Option<u64>,
}

#[derive(Template)]
#[template(path = "signed_out.html")]
pub struct SignedOutTemplate {
    pub chrome: Chrome,
}

#[derive(Template)]
#[template(path = "signout_confirm.html")]
pub struct SignOutConfirmTemplate {
    pub chrome: Chrome,
    pub csrf_token: String,
    pub client_name: String,
    pub username: String,
    pub id_token_hint: String,
    pub client_id: String,
    pub post_logout_redirect_uri: String,
    pub state: String,
}

/// The origin of a redirect URI, as a CSP source: `scheme://host[:port]`,
/// or `scheme:` for a native app's private-use scheme. None when it is not
/// plainly one (nothing that could end the directive gets through).
pub fn origin(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    // Schemes that run or embed content are never a place to send a form.
    if matches!(
        scheme.as_str(),
        "javascript" | "data" | "vbscript" | "blob" | "file" | "filesystem" | "about"
    ) {
        return None;
    }
    if scheme != "http" && scheme != "https" {
        return Some(format!("{scheme}:"));
    }
    let authority = rest.strip_prefix("//")?;
    let authority = authority.split(['/', '?', '#']).next().unwrap_or_default();
    // No userinfo; host and port characters only.
    let ok = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    ok.then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// The policy of a page whose forms may end in a 302 to `redirect`. No
/// page runs a script, except those offering a passkey, which load the one
/// the gateway serves (`scripts`).
pub fn csp(redirect: Option<&str>, scripts: bool) -> String {
    let form_action = match redirect {
        Some(o) => format!("'self' {o}"),
        None => "'self'".to_owned(),
    };
    let script = if scripts { "script-src 'self'; " } else { "" };
    format!(
        "default-src 'none'; {script}style-src 'self'; img-src 'self'; form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    )
}

/// A response being put together: status, body or location, cookies.
pub struct Answer {
    pub status: StatusCode,
    pub body: Option<String>,
    pub location: Option<String>,
    pub redirect_origin: Option<String>,
    pub cookies: Vec<HeaderValue>,
    pub retry_after: Option<u64>,
    /// The page loads the gateway's passkey script.
    pub scripts: bool,
}

impl Answer {
    pub fn page(status: StatusCode, body: String, redirect_origin: Option<String>) -> Self {
        Self {
            status,
            body: Some(body),
            location: None,
            redirect_origin,
            cookies: Vec::new(),
            retry_after: None,
            scripts: false,
        }
    }

    pub fn redirect(location: String) -> Self {
        Self {
            status: StatusCode::FOUND,
            body: None,
            location: Some(location),
            redirect_origin: None,
            cookies: Vec::new(),
            retry_after: None,
            scripts: false,
        }
    }
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut response = match (self.location, self.body) {
            (Some(location), _) => match HeaderValue::from_str(&location) {
                Ok(l) => {
                    let mut r = Response::new(axum::body::Body::empty());
                    r.headers_mut().insert(header::LOCATION, l);
                    *r.status_mut() = self.status;
                    r
                }
                // A location no header can carry: nothing to redirect to.
                Err(_) => StatusCode::BAD_GATEWAY.into_response(),
            },
            (None, Some(body)) => {
                let mut r = (self.status, body).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                r
            }
            (None, None) => self.status.into_response(),
        };
        let h = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&csp(self.redirect_origin.as_deref(), self.scripts)) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        for cookie in self.cookies {
            h.append(header::SET_COOKIE, cookie);
        }
        if let Some(secs) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            h.insert(header::RETRY_AFTER, v);
        }
        response
    }
}

pub fn chrome(oidc: &Shared) -> Chrome {
    Chrome {
        product: oidc.branding.product.clone(),
        has_logo: oidc.branding.logo.is_some(),
    }
}

/// Renders a template; a template that fails (it should not) is a bare 500.
pub fn render(t: &impl Template) -> Result<String, Answer> {
    t.render().map_err(|e| {
        tracing::error!("page template: {e}");
        Answer {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: Some("internal error".into()),
            location: None,
            redirect_origin: None,
            cookies: Vec::new(),
            retry_after: None,
            scripts: false,
        }
    })
}

/// A rendered page with `status` (its forms may also go to
/// `redirect_origin`), or the bare 500 of a template that failed.
pub fn page(
    status: StatusCode,
    template: &impl Template,
    redirect_origin: Option<String>,
) -> Answer {
    match render(template) {
        Ok(body) => Answer::page(status, body, redirect_origin),
        Err(a) => a,
    }
}

/// The error page.
pub fn error_page(
    oidc: &Shared,
    status: StatusCode,
    error: &str,
    description: &str,
    retry_after: Option<u64>,
) -> Answer {
    let page = ErrorTemplate {
        chrome: chrome(oidc),
        error: error.to_owned(),
        description: description.to_owned(),
        retry_after_secs: retry_after,
    };
    match render(&page) {
        Ok(body) => {
            let mut a = Answer::page(status, body, None);
            a.retry_after = retry_after;
            a
        }
        Err(a) => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_a_plain_csp_source_or_nothing() {
        assert_eq!(
            origin("https://App.example:8443/cb?x=1").as_deref(),
            Some("https://app.example:8443")
        );
        assert_eq!(
            origin("http://127.0.0.1:5173/cb").as_deref(),
            Some("http://127.0.0.1:5173")
        );
        assert_eq!(
            origin("com.example.app:/cb").as_deref(),
            Some("com.example.app:")
        );
        for bad in [
            "https://a.example; script-src *",
            "https://user@a.example/",
            "javascript:alert(1)",
            "data:text/html,x",
            "https:/nohost",
            "",
            "1http://x",
        ] {
            let o = origin(bad);
            assert!(
                o.as_deref()
                    .is_none_or(|o| !o.contains([';', ' ', '\'', '@'])),
                "{bad}: {o:?}"
            );
        }
        assert_eq!(origin("javascript:alert(1)"), None);
        assert_eq!(
            csp(Some("https://app.example"), false),
            "default-src 'none'; style-src 'self'; img-src 'self'; \
             form-action 'self' https://app.example; frame-ancestors 'none'; base-uri 'none'"
        );
    }

    fn factor_page(code_error: Option<&str>) -> String {
        SignInFactorTemplate {
            chrome: Chrome {
                product: "Suite".into(),
                has_logo: false,
            },
            request_id: "req-1".into(),
            csrf_token: "csrf-1".into(),
            redirect_origin: "https://app.example".into(),
            client_name: "App <b>".into(),
            challenge: "ch\"allenge".into(),
            code_error: code_error.map(str::to_owned),
            passkey_options: String::new(),
        }
        .render()
        .expect("rendered")
    }

    #[test]
    fn the_factor_form_carries_the_challenge_hidden_and_asks_for_one_code() {
        let page = factor_page(None);
        assert!(
            page.contains(&format!(
                r#"<form method="post" action="{}">"#,
                super::super::SIGNIN_FACTOR_PATH
            )),
            "{page}"
        );
        for hidden in [
            r#"<input type="hidden" name="request_id" value="req-1">"#,
            r#"<input type="hidden" name="csrf_token" value="csrf-1">"#,
            r#"<input type="hidden" name="redirect_origin" value="https://app.example">"#,
            r#"<input type="hidden" name="challenge" value="ch&#34;allenge">"#,
        ] {
            assert!(page.contains(hidden), "{hidden} in {page}");
        }
        let code = page
            .split("<input ")
            .find(|i| i.starts_with(r#"id="code""#))
            .expect("the code field");
        for attribute in [
            r#"name="code""#,
            r#"type="text""#,
            r#"autocomplete="one-time-code""#,
            r#"inputmode="text""#,
            "autofocus",
            "required",
        ] {
            assert!(code.contains(attribute), "{attribute} in {code}");
        }
        assert!(!code.contains("aria-invalid"), "{code}");
        assert!(page.contains(r#"<label for="code">"#));
        assert!(page.contains("authenticator app, or a recovery code"));
        // No password field, no script, nothing from another origin.
        assert!(!page.contains("password"), "{page}");
        assert!(!page.contains("<script"), "{page}");
        assert!(
            !page.contains(r#"src="http"#) && !page.contains(r#"href="http"#),
            "{page}"
        );
        assert!(page.contains("App &#60;b&#62;"), "{page}");
    }

    #[test]
    fn the_factor_form_shows_its_error_beside_the_code_field() {
        let page = factor_page(Some("That code is wrong <again>."));
        assert!(
            page.contains(r#"aria-invalid="true" aria-describedby="code-error""#),
            "{page}"
        );
        assert!(
            page.contains(r#"<p id="code-error" class="error" role="alert">That code is wrong &#60;again&#62;.</p>"#),
            "{page}"
        );
    }
}
