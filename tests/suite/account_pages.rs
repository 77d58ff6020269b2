//! The account pages that mailed links open, end to end: the links read
//! from the development mailbox's `.eml` files (the launcher writes mail
//! there without SMTP_URL), followed with a browser (`oidc_browser.rs`),
//! and their effects seen through the REST API. A link's GET changes
//! nothing; its page's POST does; a spent link shows the not-valid page
//! (400); a reset asked for an unknown address looks like any other.

use crate::{
    helpers::{Suite, login, register_as},
    oidc_browser::{Browser, Page, encode, http},
};
use base64::Engine as _;
use std::time::{Duration, Instant};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "velvet otter climbs the lighthouse";
/// Long enough, but the policy's scorer knows it.
const WEAK_PASSWORD: &str = "password123";
const NOT_VALID: &str = "This link is not valid any more";
const SENT: &str = "If an account has this address or username, we sent a link";

/// The `text/plain` part of a mail, decoded (quoted-printable, with its
/// soft line breaks, or base64, whichever the mailer chose).
fn text_part(eml: &str) -> String {
    let boundary = regex::Regex::new(r#"boundary="?([^";\r\n]+)"?"#)
        .expect("regex")
        .captures(eml)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
        .unwrap_or_else(|| panic!("no multipart boundary in {eml}"));
    for part in eml.split(&format!("--{boundary}")) {
        let Some((head, body)) = part
            .split_once("\r\n\r\n")
            .or_else(|| part.split_once("\n\n"))
        else {
            continue;
        };
        let head = head.to_ascii_lowercase();
        if !head.contains("content-type: text/plain") {
            continue;
        }
        if head.contains("content-transfer-encoding: quoted-printable") {
            return suite_testkit::smtp::quoted_printable(body);
        }
        if head.contains("content-transfer-encoding: base64") {
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("base64");
            return String::from_utf8(bytes).expect("utf-8");
        }
        return body.to_owned();
    }
    panic!("no text/plain part in {eml}")
}

/// The links to `path` (with a token) in the mail to `to` in the suite's
/// mailbox, waited for (the outbox sends after the change commits).
pub(crate) async fn mailed_link(s: &Suite, to: &str, path: &str) -> String {
    let mailbox = s.data_dir().join("mail");
    let link = regex::Regex::new(&format!(
        r"https?://[^\s/]+{}\?token=[A-Za-z0-9_\-]+",
        regex::escape(path)
    ))
    .expect("regex");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut files: Vec<_> = std::fs::read_dir(&mailbox)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        for file in files {
            if file.extension().is_none_or(|e| e != "eml") {
                continue;
            }
            let eml = std::fs::read_to_string(&file).expect("a mail");
            let head = eml.split("\r\n\r\n").next().unwrap_or_default();
            if !head.contains(to) {
                continue;
            }
            if let Some(m) = link.find(&text_part(&eml)) {
                return m.as_str().to_owned();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no mail to {to} with a link to {path} in {}",
            mailbox.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The path and query of a mailed link to this suite's gateway.
fn local(s: &Suite, link: &str) -> String {
    let origin = format!("http://{}", s.gateway);
    link.strip_prefix(&origin)
        .unwrap_or_else(|| panic!("{link} is not on {origin}"))
        .to_owned()
}

/// The headers every account page carries.
fn assert_private(page: &Page) {
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("form-action 'self';")
            && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        page.header("content-type").starts_with("text/html"),
        "{:?}",
        page.headers
    );
}

/// The text as the pages' templates (askama's HTML escaper) escape it.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

async fn email_verified(s: &Suite, access: &str) -> bool {
    let me = s
        .request("GET", "/api/v1/users/me", Some(access), None)
        .await
        .expect("me");
    assert_eq!(me.status, 200, "{}", me.json);
    me.json["emailVerified"].as_bool().unwrap_or(false)
}

async fn login_status(s: &Suite, name: &str, password: &str) -> u16 {
    s.request(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(serde_json::json!({"login": name, "password": password})),
    )
    .await
    .expect("login")
    .status
}

async fn a_mailed_link_verifies_the_address_only_when_its_page_is_posted(s: Suite) {
    register_as(&s, "ada", "ada@example.com", PASSWORD).await;
    let link = local(
        &s,
        &mailed_link(&s, "ada@example.com", "/account/verify-email").await,
    );
    let access = login(&s, "ada", PASSWORD).await["accessToken"]
        .as_str()
        .expect("access token")
        .to_owned();

    // The link's GET (and HEAD, as a scanner may send) shows a form, and
    // verifies nothing.
    let mut browser = Browser::default();
    let page = browser.get(&s, &link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_private(&page);
    assert!(page.body.contains("Confirm your email address"));
    assert!(
        page.body
            .contains(r#"<form method="post" action="/account/verify-email">"#),
        "{}",
        page.body
    );
    let head = http(&s, "HEAD", &link, &[], None).await;
    assert_eq!(head.status, 200);
    assert!(!email_verified(&s, &access).await, "a GET verified");

    // A form another site posts is refused, whatever it carries.
    let token = page.field("token");
    let forged = http(
        &s,
        "POST",
        "/account/verify-email",
        &[("sec-fetch-site", "cross-site")],
        Some(encode(&[("token", &token)])),
    )
    .await;
    assert_eq!(forged.status, 403, "{}", forged.body);
    assert!(!email_verified(&s, &access).await);

    let done = browser
        .post(&s, "/account/verify-email", &[("token", &token)])
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_private(&done);
    assert!(
        done.body
            .contains("Your email address ada@example.com is confirmed"),
        "{}",
        done.body
    );
    assert!(email_verified(&s, &access).await);

    // Each link works once: again, the not-valid page (400).
    let again = browser
        .post(&s, "/account/verify-email", &[("token", &token)])
        .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_private(&again);
    assert!(again.body.contains(NOT_VALID), "{}", again.body);

    // No token, or one no link carries: the not-valid page, never a 500.
    for path in [
        "/account/verify-email".to_owned(),
        "/account/revert-email?token=".to_owned(),
        "/account/verify-email?token=a&token=b".to_owned(),
        format!("/account/reset-password?token={}", "a".repeat(129)),
    ] {
        let page = browser.get(&s, &path).await;
        assert_eq!(page.status, 400, "{path}: {}", page.body);
        assert_private(&page);
        assert!(page.body.contains(NOT_VALID), "{path}: {}", page.body);
    }
    let unknown = browser
        .post(&s, "/account/revert-email", &[("token", "no-such-token")])
        .await;
    assert_eq!(unknown.status, 400, "{}", unknown.body);
    assert!(unknown.body.contains(NOT_VALID), "{}", unknown.body);

    // The sign-in page leads to the forgotten-password form.
    assert!(
        include_str!("../../gateway/templates/signin.html")
            .contains(r#"href="/account/forgot-password""#)
    );
    s.stop().await;
}

async fn a_forgotten_password_is_replaced_through_the_mailed_link(s: Suite) {
    register_as(&s, "grace", "grace@example.com", PASSWORD).await;
    let mut browser = Browser::default();
    let form = browser.get(&s, "/account/forgot-password").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_private(&form);
    let csrf = form.field("csrf_token");

    // Posted without this browser's cookie (from another site): the form
    // again, and nothing mailed for it.
    let forged = Browser::default()
        .post(
            &s,
            "/account/forgot-password",
            &[("login", "grace"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(forged.status, 400, "{}", forged.body);
    assert!(forged.body.contains("This form expired"), "{}", forged.body);

    let sent = browser
        .post(
            &s,
            "/account/forgot-password",
            &[("login", "grace@example.com"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_private(&sent);
    assert!(sent.body.contains(SENT), "{}", sent.body);
    // An address with no account: the very same page.
    let nobody = browser
        .post(
            &s,
            "/account/forgot-password",
            &[("login", "nobody@example.com"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(nobody.status, 200, "{}", nobody.body);
    assert_eq!(nobody.body, sent.body);

    let link = local(
        &s,
        &mailed_link(&s, "grace@example.com", "/account/reset-password").await,
    );
    let page = browser.get(&s, &link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_private(&page);
    assert!(
        page.body.contains(r#"autocomplete="new-password""#),
        "{}",
        page.body
    );
    let token = page.field("token");

    // Two different passwords: the form again, the error on the repeat.
    let mismatch = browser
        .post(
            &s,
            "/account/reset-password",
            &[
                ("token", &token),
                ("new_password", NEW_PASSWORD),
                ("repeat_password", "velvet otter climbs the lighthouse!"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, 400, "{}", mismatch.body);
    assert!(
        mismatch.body.contains(r#"id="repeat-password-error""#)
            && mismatch.body.contains(r#"name="new_password""#),
        "{}",
        mismatch.body
    );

    // A weak password: the form again, with the policy's own words (the
    // ones the API gives for the same password).
    let api = s
        .request(
            "POST",
            "/api/v1/password:reset",
            None,
            Some(serde_json::json!({"token": token, "newPassword": WEAK_PASSWORD})),
        )
        .await
        .expect("reset over REST");
    assert_eq!(api.status, 400, "{}", api.json);
    let policy = api.json["errors"][0]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("a violation: {}", api.json))
        .to_owned();
    let weak = browser
        .post(
            &s,
            "/account/reset-password",
            &[
                ("token", &token),
                ("new_password", WEAK_PASSWORD),
                ("repeat_password", WEAK_PASSWORD),
            ],
        )
        .await;
    assert_eq!(weak.status, 400, "{}", weak.body);
    assert!(
        weak.body.contains(r#"id="new-password-error""#) && weak.body.contains(&escaped(&policy)),
        "{policy}: {}",
        weak.body
    );
    assert!(!weak.body.contains(WEAK_PASSWORD), "a password shown back");

    let done = browser
        .post(
            &s,
            "/account/reset-password",
            &[
                ("token", &token),
                ("new_password", NEW_PASSWORD),
                ("repeat_password", NEW_PASSWORD),
            ],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_private(&done);
    assert!(
        done.body
            .contains("Your password was changed; every session was signed out"),
        "{}",
        done.body
    );
    assert_eq!(login_status(&s, "grace", NEW_PASSWORD).await, 200);
    assert_eq!(login_status(&s, "grace", PASSWORD).await, 401);

    // The link worked once.
    let again = browser
        .post(
            &s,
            "/account/reset-password",
            &[
                ("token", &token),
                ("new_password", "another fine password here"),
                ("repeat_password", "another fine password here"),
            ],
        )
        .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains(NOT_VALID), "{}", again.body);
    s.stop().await;
}

async fn the_old_address_undoes_a_change_of_address(s: Suite) {
    let user = register_as(&s, "linus", "linus@example.com", PASSWORD).await;
    let id = user.json["id"].as_str().expect("id").to_owned();
    let access = login(&s, "linus", PASSWORD).await["accessToken"]
        .as_str()
        .expect("access token")
        .to_owned();
    let r = s
        .request(
            "PATCH",
            &format!("/api/v1/users/{id}?updateMask=email"),
            Some(&access),
            Some(serde_json::json!({"email": "linus@elsewhere.example"})),
        )
        .await
        .expect("change the address");
    assert_eq!(r.status, 200, "{}", r.json);

    // The new address confirms (the same page as a verification's).
    let mut browser = Browser::default();
    let link = local(
        &s,
        &mailed_link(&s, "linus@elsewhere.example", "/account/verify-email").await,
    );
    let page = browser.get(&s, &link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let done = browser
        .post(
            &s,
            "/account/verify-email",
            &[("token", &page.field("token"))],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("linus@elsewhere.example is confirmed"),
        "{}",
        done.body
    );

    // The old address is told, with the link that undoes it.
    let link = local(
        &s,
        &mailed_link(&s, "linus@example.com", "/account/revert-email").await,
    );
    let page = browser.get(&s, &link).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_private(&page);
    assert!(
        page.body.contains("Undo the change of your email address")
            && page
                .body
                .contains(r#"<form method="post" action="/account/revert-email">"#),
        "{}",
        page.body
    );
    assert_eq!(
        login_status(&s, "linus@example.com", PASSWORD).await,
        401,
        "a GET undid the change"
    );
    let token = page.field("token");
    let undone = browser
        .post(&s, "/account/revert-email", &[("token", &token)])
        .await;
    assert_eq!(undone.status, 200, "{}", undone.body);
    assert_private(&undone);
    assert!(
        undone
            .body
            .contains("Your address is linus@example.com again and everyone was signed out")
            && undone.body.contains(r#"href="/account/forgot-password""#),
        "{}",
        undone.body
    );
    assert_eq!(login_status(&s, "linus@example.com", PASSWORD).await, 200);
    let again = browser
        .post(&s, "/account/revert-email", &[("token", &token)])
        .await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.body.contains(NOT_VALID), "{}", again.body);
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    a_mailed_link_verifies_the_address_only_when_its_page_is_posted,
    a_forgotten_password_is_replaced_through_the_mailed_link,
    the_old_address_undoes_a_change_of_address,
);

/// The pages' POSTs are counted in the strict bucket (as the sign-in
/// form's are), their GETs in the general one; with SIGN_IN_URL they lead
/// to the application's sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_posts_are_counted_in_the_strict_bucket() {
    let Some(s) = crate::helpers::spawn_suite_with(crate::helpers::Backend::Sqlite, |c| {
        c.auth_rate_limit_burst = 1;
        c.auth_rate_limit_per_minute = 1;
        c.branding.sign_in_url = Some("https://app.example/signin".into());
    })
    .await
    else {
        return;
    };
    let mut browser = Browser::default();
    let first = browser
        .post(&s, "/account/verify-email", &[("token", "no-such-token")])
        .await;
    assert_eq!(first.status, 400, "{}", first.body);
    // With SIGN_IN_URL, the pages link to the application's sign-in.
    assert!(
        first
            .body
            .contains(r#"<a href="https://app.example/signin">Sign in</a>"#),
        "{}",
        first.body
    );
    let second = browser
        .post(&s, "/account/reset-password", &[("token", "no-such-token")])
        .await;
    assert_eq!(second.status, 429, "{}", second.body);
    assert_private(&second);
    assert!(
        second
            .header("retry-after")
            .parse::<u64>()
            .is_ok_and(|s| s > 0),
        "{:?}",
        second.headers
    );
    // The pages themselves are still shown.
    let page = browser.get(&s, "/account/forgot-password").await;
    assert_eq!(page.status, 200, "{}", page.body);
    s.stop().await;
}
