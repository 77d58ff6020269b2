//! The account area of the signed-in user (`/account`), through the real
//! pages of the launched suite: its sign-in through the provider's pages,
//! an authenticator app set up from the page's key (the test computes its
//! codes with totp-rs) and confirmed, the recovery codes shown once and
//! made anew, a factor's removal refused until the user signed in again
//! with the second factor, the sessions listed, and signing out
//! everywhere (an earlier refresh token, the access token and every
//! browser session stop working); a personal access token created from the
//! page, its secret shown once and used, listed by its prefix and revoked.

use crate::{
    factors::user_with_totp,
    helpers::{Suite, login, register_as},
    oidc_browser::{Browser, Page},
};
use totp_rs::{Algorithm, Secret, TOTP};

const PASSWORD: &str = "correct horse battery";

/// The path of a `Location` (absolute under PUBLIC_URL, or a path).
fn path_of(location: &str) -> String {
    match location.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or_else(|| "/".to_owned(), |i| rest[i..].to_owned()),
        None => location.to_owned(),
    }
}

/// Follows the gateway's redirects from `page`.
async fn follow(s: &Suite, browser: &mut Browser, mut page: Page) -> Page {
    for _ in 0..10 {
        if page.status != 302 && page.status != 303 {
            return page;
        }
        let next = path_of(page.header("location"));
        page = browser.get(s, &next).await;
    }
    panic!("too many redirects");
}

/// The sign-in form of `page` posted with `login`'s password.
async fn post_password(s: &Suite, browser: &mut Browser, page: &Page, login: &str) -> Page {
    browser
        .post(
            s,
            "/oauth2/signin",
            &[
                ("request_id", &page.field("request_id")),
                ("csrf_token", &page.field("csrf_token")),
                ("redirect_origin", &page.field("redirect_origin")),
                ("login", login),
                ("password", PASSWORD),
            ],
        )
        .await
}

/// The factor form of `page` posted with `code`.
async fn post_code(s: &Suite, browser: &mut Browser, page: &Page, code: &str) -> Page {
    browser
        .post(
            s,
            "/oauth2/signin/factor",
            &[
                ("request_id", &page.field("request_id")),
                ("csrf_token", &page.field("csrf_token")),
                ("redirect_origin", &page.field("redirect_origin")),
                ("challenge", &page.field("challenge")),
                ("code", code),
            ],
        )
        .await
}

/// Signs `login` in from `start` (a page that sends the browser to the
/// account area's sign-in), with `second_factor` (a code) when it asks for
/// one: the account area's page.
async fn sign_in(
    s: &Suite,
    browser: &mut Browser,
    start: &str,
    login: &str,
    second_factor: Option<String>,
) -> Page {
    let started = browser.get(s, start).await;
    let page = follow(s, browser, started).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("your account"), "{}", page.body);
    let mut page = post_password(s, browser, &page, login).await;
    if let Some(code) = second_factor {
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            page.body.contains("/oauth2/signin/factor"),
            "the second factor's form: {}",
            page.body
        );
        page = post_code(s, browser, &page, &code).await;
    }
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(
        page.header("location").contains("/account/signed-in?"),
        "{}",
        page.header("location")
    );
    let page = follow(s, browser, page).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body
            .contains(&format!("Signed in as <strong>{login}</strong>")),
        "{}",
        page.body
    );
    page
}

/// The code of `app` `steps` time steps from now.
fn code(app: &TOTP, steps: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    app.generate(u64::try_from(now + 30 * steps).unwrap_or(0))
}

/// The authenticator of the key a setup page shows.
fn app_of(page: &Page) -> TOTP {
    let re = regex::Regex::new(r#"<code id="secret">([A-Z2-7 ]+)</code>"#).expect("regex");
    let secret: String = re
        .captures(&page.body)
        .and_then(|c| c.get(1))
        .unwrap_or_else(|| panic!("no key on {}", page.body))
        .as_str()
        .replace(' ', "");
    let bytes = Secret::Encoded(secret).to_bytes().expect("base32");
    TOTP::new_unchecked(Algorithm::SHA1, 6, 0, 30, bytes, None, "test".into())
}

/// The recovery codes a page lists.
fn codes_on(page: &Page) -> Vec<String> {
    let re = regex::Regex::new(r"<li><code>([^<]+)</code></li>").expect("regex");
    re.captures_iter(&page.body)
        .map(|c| c[1].to_owned())
        .collect()
}

/// The account area's form at `path` posted with `fields`, with the CSRF
/// token of `page`.
async fn post_form(
    s: &Suite,
    browser: &mut Browser,
    page: &Page,
    path: &str,
    fields: &[(&str, &str)],
) -> Page {
    let csrf = page.field("csrf_token");
    let mut form = vec![("csrf_token", csrf.as_str())];
    form.extend_from_slice(fields);
    browser.post(s, path, &form).await
}

async fn an_authenticator_is_set_up_and_removed_in_the_account_area(s: Suite) {
    register_as(&s, "alma", "alma@example.com", PASSWORD).await;
    let mut browser = Browser::default();

    // Not signed in: the area sends the browser to its sign-in.
    let first = browser.get(&s, "/account").await;
    assert_eq!(first.status, 302, "{}", first.body);
    assert_eq!(first.header("location"), "/account/signin");
    let page = sign_in(&s, &mut browser, "/account", "alma", None).await;
    assert!(
        page.body.contains("Set up an authenticator app"),
        "{}",
        page.body
    );
    assert!(page.body.contains("Sign out everywhere"), "{}", page.body);
    // The one script is the gateway's, for the passkey form.
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(page.body.contains("Add a passkey"), "{}", page.body);
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(
        page.header("content-security-policy")
            .contains("default-src 'none'"),
        "{}",
        page.header("content-security-policy")
    );
    // The token the gateway acts with never reaches the browser.
    assert!(!page.body.contains("eyJ"), "{}", page.body);
    assert!(
        browser.cookies.values().all(|v| !v.starts_with("eyJ")),
        "{:?}",
        browser.cookies
    );

    // A form without this browser's CSRF token changes nothing.
    let forged = browser
        .post(&s, "/account/totp", &[("csrf_token", "forged")])
        .await;
    assert_eq!(forged.status, 302, "{}", forged.body);
    assert_eq!(forged.header("location"), "/account");

    // The setup: the QR code inline (as the service drew it) and the key.
    let setup = post_form(
        &s,
        &mut browser,
        &page,
        "/account/totp",
        &[("name", "phone")],
    )
    .await;
    assert_eq!(setup.status, 200, "{}", setup.body);
    assert!(
        setup
            .body
            .contains(r#"<div class="qr"><svg xmlns="http://www.w3.org/2000/svg""#),
        "{}",
        setup.body
    );
    assert!(!setup.body.contains("<script"), "{}", setup.body);
    let app = app_of(&setup);
    let factor_id = setup.field("factor_id");

    // A wrong code: the form again, its error beside the field.
    let valid = [code(&app, -1), code(&app, 0), code(&app, 1)];
    let wrong = (0..1000)
        .map(|n| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !valid.contains(c))
        .expect("a wrong code");
    let refused = post_form(
        &s,
        &mut browser,
        &setup,
        "/account/totp/confirm",
        &[("factor_id", &factor_id), ("code", &wrong)],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains(r#"aria-describedby="code-error""#),
        "{}",
        refused.body
    );
    let confirmed = post_form(
        &s,
        &mut browser,
        &refused,
        "/account/totp/confirm",
        &[("factor_id", &factor_id), ("code", &code(&app, 0))],
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);
    let first_codes = codes_on(&confirmed);
    assert_eq!(first_codes.len(), 10, "{}", confirmed.body);

    let page = browser.get(&s, "/account").await;
    assert!(
        page.body.contains("<strong>phone</strong>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("10 recovery codes left"),
        "{}",
        page.body
    );

    // This browser signed in with the password alone: removing the factor
    // (or making new codes) needs a sign-in with it, which the page offers.
    let delete = [("factor_id", factor_id.as_str())];
    let step_up = post_form(&s, &mut browser, &page, "/account/factors/delete", &delete).await;
    assert_eq!(step_up.status, 403, "{}", step_up.body);
    assert!(
        step_up.body.contains("/account/signin?second_factor=1"),
        "{}",
        step_up.body
    );
    let again = post_form(&s, &mut browser, &page, "/account/recovery-codes", &[]).await;
    assert_eq!(again.status, 403, "{}", again.body);

    // Signed in again with the second factor (the next time step: the
    // confirmation used this one), the changes go through.
    let page = sign_in(
        &s,
        &mut browser,
        "/account/signin?second_factor=1",
        "alma",
        Some(code(&app, 1)),
    )
    .await;
    let new_codes = post_form(&s, &mut browser, &page, "/account/recovery-codes", &[]).await;
    assert_eq!(new_codes.status, 200, "{}", new_codes.body);
    let new_codes = codes_on(&new_codes);
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !first_codes.contains(c)));

    let removed = post_form(&s, &mut browser, &page, "/account/factors/delete", &delete).await;
    assert_eq!(removed.status, 302, "{}", removed.body);
    let page = follow(&s, &mut browser, removed).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("The second factor was removed."),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("<strong>phone</strong>"),
        "{}",
        page.body
    );
}

async fn signing_out_everywhere_ends_every_session_of_the_user(s: Suite) {
    register_as(&s, "olga", "olga@example.com", PASSWORD).await;
    let rest = login(&s, "olga", PASSWORD).await;
    let refresh = rest["refreshToken"].as_str().expect("refresh token");
    let access = rest["accessToken"].as_str().expect("access token");

    // Two browsers signed in at the provider.
    let mut other = Browser::default();
    sign_in(&s, &mut other, "/account", "olga", None).await;
    let mut browser = Browser::default();
    let page = sign_in(&s, &mut browser, "/account", "olga", None).await;
    // The REST login's session is listed.
    assert!(page.body.contains("signed in "), "{}", page.body);
    assert!(page.body.contains("from 127.0.0.1"), "{}", page.body);

    // One session signed out from the list: its refresh token stops working.
    let one = login(&s, "olga", PASSWORD).await;
    let one_id = one["sessionId"].as_str().expect("session id");
    let page = browser.get(&s, "/account").await;
    assert!(page.body.contains(one_id), "{}", page.body);
    let ended = post_form(
        &s,
        &mut browser,
        &page,
        "/account/sessions/end",
        &[("session_id", one_id)],
    )
    .await;
    assert_eq!(ended.status, 302, "{}", ended.body);
    let page = follow(&s, &mut browser, ended).await;
    assert!(
        page.body.contains("That session was signed out."),
        "{}",
        page.body
    );
    assert!(!page.body.contains(one_id), "{}", page.body);
    let refreshed = s
        .with_refresh_token(
            "/api/v1/auth/refresh",
            one["refreshToken"].as_str().expect("refresh token"),
        )
        .await;
    assert_eq!(refreshed.status, 401, "{}", refreshed.json);

    let done = post_form(&s, &mut browser, &page, "/account/sign-out-everywhere", &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Signed out everywhere"), "{}", done.body);
    assert!(
        !browser.cookies.contains_key("__Host-suite-session"),
        "the session cookie went: {:?}",
        browser.cookies
    );

    // The earlier refresh token no longer works.
    let refreshed = s.with_refresh_token("/api/v1/auth/refresh", refresh).await;
    assert_eq!(refreshed.status, 401, "{}", refreshed.json);
    // Nor, within a moment, its access token.
    let mut refused = false;
    for _ in 0..50 {
        let me = s.get("/api/v1/users/me", Some(access)).await.expect("me");
        if me.status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(refused, "the access token is revoked");
    // Each browser is asked to sign in again, the other one too.
    for b in [&mut browser, &mut other] {
        let page = b.get(&s, "/account").await;
        assert_eq!(page.status, 302, "{}", page.body);
        assert_eq!(page.header("location"), "/account/signin");
    }
    assert!(!other.cookies.contains_key("__Host-suite-session"));

    // The REST API does the same for an app with its own UI.
    let rest = login(&s, "olga", PASSWORD).await;
    let token = rest["accessToken"].as_str().expect("access token");
    let all = s
        .request("POST", "/api/v1/auth/sessions:revokeAll", Some(token), None)
        .await
        .expect("revoke all");
    assert_eq!(all.status, 200, "{}", all.json);
    assert_eq!(all.json["endedSessions"], 1, "{}", all.json);
    let refreshed = s
        .with_refresh_token(
            "/api/v1/auth/refresh",
            rest["refreshToken"].as_str().expect("refresh token"),
        )
        .await;
    assert_eq!(refreshed.status, 401, "{}", refreshed.json);
}

/// A user whose browser signed in with the second factor (a code of the
/// app, or a recovery code) changes their factors at once.
async fn a_sign_in_with_the_second_factor_allows_changing_the_factors(s: Suite) {
    let (app, codes, _, _) = user_with_totp(&s, "tove").await;

    let mut with_code = Browser::default();
    let page = sign_in(
        &s,
        &mut with_code,
        "/account",
        "tove",
        Some(codes[0].clone()),
    )
    .await;
    assert!(page.body.contains("9 recovery codes left"), "{}", page.body);
    let made = post_form(&s, &mut with_code, &page, "/account/recovery-codes", &[]).await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(codes_on(&made).len(), 10);

    // The confirmation used this time step: the app's next code.
    let mut browser = Browser::default();
    let page = sign_in(&s, &mut browser, "/account", "tove", Some(app.code(1))).await;
    assert!(
        page.body.contains("<strong>phone</strong>"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("signed in with your password alone"),
        "{}",
        page.body
    );
    let factor_id = page.field("factor_id");
    let removed = post_form(
        &s,
        &mut browser,
        &page,
        "/account/factors/delete",
        &[("factor_id", &factor_id)],
    )
    .await;
    assert_eq!(removed.status, 302, "{}", removed.body);
    let page = follow(&s, &mut browser, removed).await;
    assert!(
        page.body.contains("The second factor was removed."),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("You sign in with your password alone"),
        "{}",
        page.body
    );
}

/// A personal access token made, used, listed and revoked from the page.
async fn a_personal_access_token_is_created_used_and_revoked_in_the_account_area(s: Suite) {
    register_as(&s, "petra", "petra@example.com", PASSWORD).await;
    let mut browser = Browser::default();
    let page = sign_in(&s, &mut browser, "/account", "petra", None).await;
    assert!(
        page.body.contains("You have no personal access tokens."),
        "{}",
        page.body
    );

    // No name and no scope: the form again, what is wrong beside each field.
    let refused = post_form(
        &s,
        &mut browser,
        &page,
        "/account/tokens",
        &[("name", " "), ("expires_in_days", "30")],
    )
    .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains(r#"id="token-name-error""#),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(r#"id="token-scopes-error""#),
        "{}",
        refused.body
    );

    let created = post_form(
        &s,
        &mut browser,
        &refused,
        "/account/tokens",
        &[
            ("name", "ci <deploy>"),
            ("scope_user_read", "on"),
            ("expires_in_days", "30"),
        ],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.header("cache-control"), "no-store");
    assert!(!created.body.contains("<script"), "{}", created.body);
    assert!(
        created.body.contains("ci &#60;deploy&#62;"),
        "{}",
        created.body
    );
    assert!(
        created.body.contains("will not be shown again"),
        "{}",
        created.body
    );
    let re =
        regex::Regex::new(r#"<code id="token-secret">(suitepat_[^<]+)</code>"#).expect("regex");
    let secret = re
        .captures(&created.body)
        .and_then(|c| c.get(1))
        .unwrap_or_else(|| panic!("no secret on {}", created.body))
        .as_str()
        .to_owned();

    let me = s.get("/api/v1/users/me", Some(&secret)).await.expect("me");
    assert_eq!(me.status, 200, "{}", me.json);
    assert_eq!(me.json["username"], "petra", "{}", me.json);

    // Listed by its prefix, never its secret.
    let page = browser.get(&s, "/account").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(!page.body.contains(&secret), "{}", page.body);
    let prefix: String = secret.chars().take("suitepat_".len() + 4).collect();
    assert!(
        page.body.contains(&format!("<code>{prefix}…</code>")),
        "{}",
        page.body
    );
    assert!(page.body.contains("(user:read)"), "{}", page.body);
    let token_id = page.field("token_id");

    let revoked = post_form(
        &s,
        &mut browser,
        &page,
        "/account/tokens/revoke",
        &[("token_id", &token_id)],
    )
    .await;
    assert_eq!(revoked.status, 302, "{}", revoked.body);
    let page = follow(&s, &mut browser, revoked).await;
    assert!(
        page.body.contains("The token was revoked."),
        "{}",
        page.body
    );
    assert!(!page.body.contains(&token_id), "{}", page.body);
    assert!(
        page.body.contains("You have no personal access tokens."),
        "{}",
        page.body
    );

    // Refused within a moment.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let me = s.get("/api/v1/users/me", Some(&secret)).await.expect("me");
        if me.status == 401 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the revoked token still works: {}",
            me.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    an_authenticator_is_set_up_and_removed_in_the_account_area,
    a_sign_in_with_the_second_factor_allows_changing_the_factors,
    signing_out_everywhere_ends_every_session_of_the_user,
    a_personal_access_token_is_created_used_and_revoked_in_the_account_area,
);
