//! Passkeys over the REST API with a software authenticator (no browser):
//! registered as a factor, then a login's second factor; refused when the
//! assertion comes from another origin, is replayed, or answers another
//! user's challenge. The browser's own (passwordless sign-in, conditional
//! UI, a cloned authenticator) are checked in headless Chromium by
//! scripts/passkey_check.sh.

use crate::{
    factors::claims,
    helpers::{Reply, Suite, login, register_as},
};
use serde_json::{Value, json};
use webauthn_authenticator_rs::{
    WebauthnAuthenticator,
    prelude::{CreationChallengeResponse, RequestChallengeResponse, Url},
    softpasskey::SoftPasskey,
};

const PASSWORD: &str = "correct horse battery";

async fn call(s: &Suite, path: &str, token: Option<&str>, body: Value) -> Reply {
    s.request("POST", path, token, Some(body))
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
}

/// The origin the relying party expects: the gateway, by name (browsers
/// refuse an IP address as a relying party).
fn origin(s: &Suite) -> Url {
    Url::parse(&format!("http://localhost:{}", s.gateway.port())).expect("origin")
}

type Authenticator = WebauthnAuthenticator<SoftPasskey>;

/// Registers `name` with a passkey from `key` as their only factor: the
/// recovery codes that came with it.
async fn user_with_passkey(s: &Suite, name: &str, key: &mut Authenticator) -> Vec<String> {
    register_as(s, name, &format!("{name}@example.com"), PASSWORD).await;
    let token = login(s, name, PASSWORD).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let started = call(
        s,
        "/api/v1/users/me/factors:startPasskeyRegistration",
        Some(&token),
        json!({"name": "laptop"}),
    )
    .await;
    assert_eq!(started.status, 200, "{}", started.json);
    let options: CreationChallengeResponse =
        serde_json::from_str(started.json["optionsJson"].as_str().expect("options"))
            .expect("creation options");
    let credential = key
        .do_registration(origin(s), options)
        .expect("the authenticator registers");
    let finish = |credential: String| {
        call(
            s,
            "/api/v1/users/me/factors:finishPasskeyRegistration",
            Some(&token),
            json!({"ceremony": started.json["ceremony"], "credentialJson": credential}),
        )
    };
    let credential = serde_json::to_string(&credential).expect("JSON");
    let done = finish(credential.clone()).await;
    assert_eq!(done.status, 200, "{}", done.json);
    assert_eq!(done.json["factor"]["kind"], "passkey");
    assert_eq!(done.json["factor"]["name"], "laptop");
    // A ceremony works once.
    let again = finish(credential).await;
    assert_eq!(again.status, 400, "{}", again.json);
    done.json["recoveryCodes"]
        .as_array()
        .expect("recovery codes with the first factor")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect()
}

/// A login's challenge and its passkey options.
async fn challenge(s: &Suite, name: &str) -> (String, RequestChallengeResponse) {
    let r = call(
        s,
        "/api/v1/auth/login",
        None,
        json!({"login": name, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    let second = &r.json["secondFactor"];
    assert_eq!(
        second["methods"],
        json!(["passkey", "recovery_code"]),
        "{}",
        r.json
    );
    let options = serde_json::from_str(second["passkeyOptionsJson"].as_str().expect("options"))
        .expect("request options");
    (
        second["challenge"].as_str().expect("challenge").to_owned(),
        options,
    )
}

async fn complete(s: &Suite, challenge: &str, assertion: &str) -> Reply {
    call(
        s,
        "/api/v1/auth/login:complete",
        None,
        json!({"challenge": challenge, "passkeyAssertionJson": assertion}),
    )
    .await
}

async fn a_passkey_is_a_second_factor_once_per_challenge(s: Suite) {
    let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    user_with_passkey(&s, "petra", &mut key).await;

    let (c, options) = challenge(&s, "petra").await;
    let assertion = key
        .do_authentication(origin(&s), options)
        .expect("the authenticator signs");
    let assertion = serde_json::to_string(&assertion).expect("JSON");
    let done = complete(&s, &c, &assertion).await;
    assert_eq!(done.status, 200, "{}", done.json);
    let claimed = claims(done.json["accessToken"].as_str().expect("token"));
    // A device-bound key (not backed up): `hwk`.
    assert_eq!(claimed["amr"], json!(["pwd", "hwk", "mfa"]), "{claimed}");

    // The same assertion on a new challenge: its ceremony is another.
    let (c2, _) = challenge(&s, "petra").await;
    let replayed = complete(&s, &c2, &assertion).await;
    assert_eq!(replayed.status, 401, "{}", replayed.json);

    let listed = s
        .get(
            "/api/v1/users/me/factors",
            Some(done.json["accessToken"].as_str().expect("token")),
        )
        .await
        .expect("list");
    assert!(
        listed.json["factors"][0]["lastUseTime"].is_string(),
        "{}",
        listed.json
    );
}

async fn a_passkey_assertion_for_another_origin_or_user_is_refused(s: Suite) {
    let mut petra = WebauthnAuthenticator::new(SoftPasskey::new(true));
    user_with_passkey(&s, "petra", &mut petra).await;
    let mut omar = WebauthnAuthenticator::new(SoftPasskey::new(true));
    user_with_passkey(&s, "omar", &mut omar).await;

    // Signed for a page of another origin (a subdomain the relying party
    // does not allow): refused.
    let (c, options) = challenge(&s, "petra").await;
    let elsewhere =
        Url::parse(&format!("https://evil.localhost:{}", s.gateway.port())).expect("url");
    let foreign = petra
        .do_authentication(elsewhere, options)
        .expect("the authenticator signs");
    let r = complete(&s, &c, &serde_json::to_string(&foreign).expect("JSON")).await;
    assert_eq!(r.status, 401, "{}", r.json);

    // Omar's passkey answering Petra's challenge: not her passkey.
    let (c, options) = challenge(&s, "petra").await;
    let wrong_user = omar.do_authentication(origin(&s), options);
    // The software key may refuse outright (the challenge allows only
    // Petra's credentials); if it signs, the service refuses.
    if let Ok(assertion) = wrong_user {
        let r = complete(&s, &c, &serde_json::to_string(&assertion).expect("JSON")).await;
        assert_eq!(r.status, 401, "{}", r.json);
    }
    // Garbage is no assertion, and changes nothing: the right one still works.
    let (c, options) = challenge(&s, "petra").await;
    let r = complete(&s, &c, "{\"not\": \"an assertion\"}").await;
    assert_eq!(r.status, 401, "{}", r.json);
    let good = petra.do_authentication(origin(&s), options).expect("signs");
    let r = complete(&s, &c, &serde_json::to_string(&good).expect("JSON")).await;
    assert_eq!(r.status, 200, "{}", r.json);
}

async fn passkeys_are_named_listed_and_removed_with_step_up(s: Suite) {
    let mut key = WebauthnAuthenticator::new(SoftPasskey::new(true));
    let codes = user_with_passkey(&s, "nina", &mut key).await;
    // Signed in with a recovery code: a recent second factor.
    let (c, _) = challenge(&s, "nina").await;
    let done = s
        .request(
            "POST",
            "/api/v1/auth/login:complete",
            None,
            Some(json!({"challenge": c, "code": codes[0]})),
        )
        .await
        .expect("complete");
    assert_eq!(done.status, 200, "{}", done.json);
    let token = done.json["accessToken"].as_str().expect("token").to_owned();
    let listed = s
        .get("/api/v1/users/me/factors", Some(&token))
        .await
        .expect("list");
    let id = listed.json["factors"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let renamed = call(
        &s,
        &format!("/api/v1/users/me/factors/{id}:rename"),
        Some(&token),
        json!({"name": "work laptop"}),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.json);
    assert_eq!(renamed.json["factor"]["name"], "work laptop");
    let empty = call(
        &s,
        &format!("/api/v1/users/me/factors/{id}:rename"),
        Some(&token),
        json!({"name": " "}),
    )
    .await;
    assert_eq!(empty.status, 400, "{}", empty.json);
    let removed = s
        .request(
            "DELETE",
            &format!("/api/v1/users/me/factors/{id}"),
            Some(&token),
            None,
        )
        .await
        .expect("delete");
    assert_eq!(removed.status, 204, "{}", removed.json);
    let plain = login(&s, "nina", PASSWORD).await;
    assert!(plain["accessToken"].is_string(), "{plain}");
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    a_passkey_is_a_second_factor_once_per_challenge,
    a_passkey_assertion_for_another_origin_or_user_is_refused,
    passkeys_are_named_listed_and_removed_with_step_up,
);
