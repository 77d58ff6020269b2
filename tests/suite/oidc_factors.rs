//! The provider's sign-in page with a second factor, through the real
//! pages and token endpoint: the password, then a code of the user's
//! authenticator (a wrong one shown beside the field), an ID token whose
//! `amr` and `acr` say how the user signed in; and `acr_values=mfa`, which
//! no password-only sign-in satisfies.

use crate::{
    factors::{claims, user_with_totp, wrong_code},
    helpers::{Suite, register_as},
    oidc::{REDIRECT, authorize_path, exchange, pkce, register_client, verify_id_token},
    oidc_browser::{Browser, Page},
};

const PASSWORD: &str = "correct horse battery";

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

/// Allows the client on the consent page, if it is one.
async fn allow(s: &Suite, browser: &mut Browser, page: Page) -> Page {
    if page.status != 200 {
        return page;
    }
    assert!(page.body.contains("asks for access"), "{}", page.body);
    browser
        .post(
            s,
            "/oauth2/consent",
            &[
                ("request_id", &page.field("request_id")),
                ("csrf_token", &page.field("csrf_token")),
                ("redirect_origin", &page.field("redirect_origin")),
                ("decision", "allow"),
            ],
        )
        .await
}

async fn the_sign_in_page_asks_for_the_second_factor(s: Suite) {
    let admin = s.mint(&uuid::Uuid::now_v7().to_string(), &["admin"]);
    let (client_id, secret) = register_client(&s, &admin).await;
    let (app, _, _, _) = user_with_totp(&s, "tina").await;
    let (verifier, challenge) = pkce();
    let mut browser = Browser::default();
    let page = browser
        .get(&s, &authorize_path(&client_id, &challenge, REDIRECT))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);

    // The right password: no session yet, the code's form instead.
    let factor_page = post_password(&s, &mut browser, &page, "tina").await;
    assert_eq!(factor_page.status, 200, "{}", factor_page.body);
    assert!(
        !browser.cookies.contains_key("__Host-suite-session"),
        "no session before the second factor"
    );
    assert!(
        !factor_page.field("challenge").is_empty(),
        "{}",
        factor_page.body
    );
    assert!(
        factor_page.body.contains("name=\"code\""),
        "{}",
        factor_page.body
    );
    assert!(
        !factor_page.body.contains("<script"),
        "{}",
        factor_page.body
    );

    // A wrong code: the form again, with the error.
    let wrong = post_code(&s, &mut browser, &factor_page, &wrong_code(&app)).await;
    assert_eq!(wrong.status, 200, "{}", wrong.body);
    assert!(wrong.body.contains("wrong or used code"), "{}", wrong.body);
    assert!(!browser.cookies.contains_key("__Host-suite-session"));

    // Another browser cannot post this browser's form, code and all.
    let mut other = Browser::default();
    let stolen = post_code(&s, &mut other, &wrong, &app.code(1)).await;
    assert_ne!(stolen.status, 302, "{}", stolen.body);

    let posted = post_code(&s, &mut browser, &wrong, &app.code(1)).await;
    let done = allow(&s, &mut browser, posted).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert!(browser.cookies.contains_key("__Host-suite-session"));
    let query = done.location_query();
    let tokens = exchange(&s, &client_id, &secret, &query["code"], &verifier).await;
    assert_eq!(tokens.status, 200, "{}", tokens.body);
    let tokens = tokens.json();
    let id_token = verify_id_token(
        &s,
        tokens["id_token"].as_str().expect("id token"),
        &client_id,
    )
    .await;
    assert_eq!(
        id_token["amr"],
        serde_json::json!(["pwd", "otp", "mfa"]),
        "{id_token}"
    );
    assert_eq!(id_token["acr"], "mfa", "{id_token}");
    let access = claims(tokens["access_token"].as_str().expect("access token"));
    assert_eq!(
        access["amr"],
        serde_json::json!(["pwd", "otp", "mfa"]),
        "{access}"
    );

    // The same code again, on a new sign-in: refused (used).
    let mut later = Browser::default();
    let page = later
        .get(&s, &authorize_path(&client_id, &pkce().1, REDIRECT))
        .await;
    let factor_page = post_password(&s, &mut later, &page, "tina").await;
    let replay = post_code(&s, &mut later, &factor_page, &app.code(1)).await;
    assert_eq!(replay.status, 200, "{}", replay.body);
    assert!(
        replay.body.contains("wrong or used code"),
        "{}",
        replay.body
    );
}

async fn acr_values_mfa_is_never_met_by_a_password_alone(s: Suite) {
    let admin = s.mint(&uuid::Uuid::now_v7().to_string(), &["admin"]);
    let (client_id, _) = register_client(&s, &admin).await;
    register_as(&s, "paula", "paula@example.com", PASSWORD).await;
    let mut browser = Browser::default();

    // A password-only sign-in (single sign-on from then on).
    let page = browser
        .get(&s, &authorize_path(&client_id, &pkce().1, REDIRECT))
        .await;
    let posted = post_password(&s, &mut browser, &page, "paula").await;
    let signed_in = allow(&s, &mut browser, posted).await;
    assert_eq!(signed_in.status, 302, "{}", signed_in.body);
    let again = browser
        .get(&s, &authorize_path(&client_id, &pkce().1, REDIRECT))
        .await;
    assert_eq!(again.status, 302, "single sign-on: {}", again.body);

    // Asking for a second factor: the session does not do, the sign-in
    // page is shown, and a user without a factor is told to set one up.
    let mfa = format!(
        "{}&acr_values=mfa",
        authorize_path(&client_id, &pkce().1, REDIRECT)
    );
    let page = browser.get(&s, &mfa).await;
    assert_eq!(page.status, 200, "the sign-in page again: {}", page.body);
    let refused = post_password(&s, &mut browser, &page, "paula").await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    assert!(refused.body.contains("second factor"), "{}", refused.body);
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    the_sign_in_page_asks_for_the_second_factor,
    acr_values_mfa_is_never_met_by_a_password_alone,
);
