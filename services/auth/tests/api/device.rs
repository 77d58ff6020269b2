//! The device authorization grant (RFC 8628) through the RPCs the gateway
//! calls: DeviceAuthorize, the verification page's VerifyUserCode, the
//! sign-in and consent forms, and the token endpoint's polls.

use crate::{
    clients::{confidential, register_client},
    forget::count,
    helpers::{Suite, TestDb},
    oauth_steps::*,
};
use suite_proto::auth::{
    Client, ClientType, DeviceAuthorization, DeviceAuthorizeRequest, TokenRequest, Tokens,
    VerifyUserCodeRequest, authorization_step::Step, device_authorize_response,
    verify_user_code_response,
};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A public client of a CLI: the device grant and refresh, no redirect URI.
fn cli(name: &str) -> Client {
    Client {
        name: name.into(),
        r#type: ClientType::Public.into(),
        grant_types: vec![DEVICE_GRANT.into(), "refresh_token".into()],
        scopes: ["openid", "profile", "offline_access", "user:read"]
            .map(str::to_owned)
            .to_vec(),
        ..Client::default()
    }
}

/// DeviceAuthorize: the codes, or the OAuth error code.
async fn device_authorize(
    s: &Suite,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> Result<DeviceAuthorization, String> {
    let req = DeviceAuthorizeRequest {
        client: auth(client_id, secret),
        scope: scope.into(),
    };
    let answer = s.oauth().device_authorize(req).await;
    given_or_error!(
        answer.expect("device authorize").into_inner().result,
        device_authorize_response::Authorization
    )
}

/// One poll of the token endpoint.
async fn poll(
    s: &Suite,
    client_id: &str,
    secret: &str,
    device_code: &str,
) -> Result<Tokens, String> {
    token(
        s,
        TokenRequest {
            client: auth(client_id, secret),
            grant_type: DEVICE_GRANT.into(),
            device_code: device_code.into(),
            ..TokenRequest::default()
        },
    )
    .await
}

/// A public client's codes for `scope`.
async fn device_codes(s: &Suite, client_id: &str, scope: &str) -> DeviceAuthorization {
    device_authorize(s, client_id, "", scope)
        .await
        .expect("codes")
}

/// One poll's OAuth error code, or none if it got tokens.
async fn poll_error(s: &Suite, client_id: &str, secret: &str, device_code: &str) -> Option<String> {
    poll(s, client_id, secret, device_code).await.err()
}

/// VerifyUserCode: the step, or the page's error to retry with.
async fn verify(s: &Suite, user_code: &str, session: &str) -> Result<Step, String> {
    match s
        .oauth()
        .verify_user_code(VerifyUserCodeRequest {
            user_code: user_code.into(),
            browser_session: session.into(),
            browser_binding: BINDING.into(),
        })
        .await
        .expect("verify user code")
        .into_inner()
        .result
    {
        Some(verify_user_code_response::Result::Step(step)) => Ok(step.step.expect("a step")),
        Some(verify_user_code_response::Result::RetryError(why)) => Err(why),
        None => Err("nothing".into()),
    }
}

/// Types `user_code`, signs `username` in and allows (or denies) the device:
/// the last step, and the browser session.
async fn decide(s: &Suite, user_code: &str, username: &str, allow: bool) -> (Step, String) {
    let step = verify(s, user_code, "").await.expect("a known code");
    let Step::SignIn(page) = step else {
        panic!("sign-in page expected: {step:?}")
    };
    let (step, session) = sign_in(s, &page.request_id, &page.csrf_token, BINDING, username).await;
    let Step::Consent(c) = step else {
        panic!("a device is always confirmed on the consent page: {step:?}")
    };
    assert_eq!(c.username, username);
    assert_eq!(
        normalized(&c.user_code),
        normalized(user_code),
        "the page shows the code to compare"
    );
    let step = decide_consent(s, &c.request_id, &c.csrf_token, BINDING, &session, allow).await;
    (step, session)
}

fn normalized(code: &str) -> String {
    code.replace('-', "").to_ascii_uppercase()
}

/// Sets the device request's expiry in the past, as ten minutes would.
async fn expire_device_codes(db: &TestDb) {
    let past = chrono::Utc::now() - chrono::Duration::minutes(1);
    let sql = "UPDATE oauth_device_codes SET expires_at = $1";
    suite_testkit::with_pool!(db.url, |pool| {
        let expired = sqlx::query(sql).bind(past).execute(&pool).await;
        expired.expect("expire");
    });
}

async fn a_device_is_allowed_in_a_browser_and_gets_its_tokens_once(s: Suite) {
    let user = s.register("quinn").await;
    let (client_id, secret) = register_client(&s, cli("Acme CLI")).await;
    assert!(secret.is_empty(), "a public client");
    let d = device_codes(&s, &client_id, "openid profile offline_access").await;
    assert_eq!(d.verification_uri, format!("{ISSUER}/oauth2/device"));
    assert_eq!(
        d.verification_uri_complete,
        format!("{ISSUER}/oauth2/device?user_code={}", d.user_code)
    );
    assert_eq!((d.expires_in, d.interval), (600, 5));
    assert_eq!(d.user_code.len(), 9);
    assert_eq!(d.user_code.as_bytes()[4], b'-');
    assert_eq!(d.device_code.len(), 43);

    assert_eq!(
        poll_error(&s, &client_id, "", &d.device_code)
            .await
            .as_deref(),
        Some("authorization_pending")
    );

    // Typed in lower case without the dash: the same code.
    let typed = normalized(&d.user_code).to_ascii_lowercase();
    let (step, _) = decide(&s, &typed, "quinn", true).await;
    match step {
        Step::Device(done) => assert!(done.approved && done.client_name == "Acme CLI"),
        other => panic!("the device page expected: {other:?}"),
    }

    // Decided: answered at once, however soon after the last poll.
    let t = poll(&s, &client_id, "", &d.device_code)
        .await
        .expect("tokens");
    assert_eq!(t.scope, "openid profile offline_access");
    assert!(!t.refresh_token.is_empty(), "offline_access");
    let id = verify_id_token(&s, &t.id_token, &client_id).await;
    assert_eq!(id["sub"], user.id.as_str());
    assert_eq!(id["preferred_username"], "quinn");
    let claims: suite_tokens::Claims = jsonwebtoken::dangerous::insecure_decode(&t.access_token)
        .expect("claims")
        .claims;
    assert_eq!(claims.client_id.as_deref(), Some(client_id.as_str()));
    // Refreshable as any OAuth session.
    let next = refresh(&s, &client_id, "", &t.refresh_token)
        .await
        .expect("refresh");
    assert_ne!(next.refresh_token, t.refresh_token);

    // Once only; and the user code is spent too.
    assert_eq!(
        poll_error(&s, &client_id, "", &d.device_code)
            .await
            .as_deref(),
        Some("invalid_grant")
    );
    assert!(verify(&s, &d.user_code, "").await.is_err());
    s.stop().await;
}

async fn polling_too_fast_is_told_to_slow_down(s: Suite) {
    let (client_id, _) = register_client(&s, cli("TV")).await;
    let d = device_codes(&s, &client_id, "").await;
    assert_eq!(
        poll_error(&s, &client_id, "", &d.device_code)
            .await
            .as_deref(),
        Some("authorization_pending")
    );
    for _ in 0..2 {
        assert_eq!(
            poll_error(&s, &client_id, "", &d.device_code)
                .await
                .as_deref(),
            Some("slow_down")
        );
    }
    assert_eq!(
        count(
            &s.auth_db,
            "SELECT MAX(interval_secs) FROM oauth_device_codes"
        )
        .await,
        15,
        "five seconds more at each slow_down"
    );
    s.stop().await;
}

async fn a_denied_device_gets_access_denied(s: Suite) {
    s.register("rhea").await;
    let (client_id, _) = register_client(&s, cli("Set-top box")).await;
    let d = device_codes(&s, &client_id, "openid").await;
    let (step, session) = decide(&s, &d.user_code, "rhea", false).await;
    assert!(
        matches!(step, Step::Device(ref d) if !d.approved),
        "{step:?}"
    );
    assert_eq!(
        poll_error(&s, &client_id, "", &d.device_code)
            .await
            .as_deref(),
        Some("access_denied")
    );
    // A signed-in browser goes straight to the consent page next time.
    let again = device_codes(&s, &client_id, "openid").await;
    let step = verify(&s, &again.user_code, &session).await.expect("known");
    assert!(matches!(step, Step::Consent(_)), "{step:?}");
    s.stop().await;
}

async fn an_expired_device_code_is_expired_token(s: Suite) {
    let (client_id, _) = register_client(&s, cli("Printer")).await;
    let d = device_codes(&s, &client_id, "openid").await;
    expire_device_codes(&s.auth_db).await;
    assert_eq!(
        poll_error(&s, &client_id, "", &d.device_code)
            .await
            .as_deref(),
        Some("expired_token")
    );
    assert!(
        verify(&s, &d.user_code, "").await.is_err(),
        "the page asks again"
    );
    s.stop().await;
}

async fn device_codes_belong_to_their_client_and_their_grant_type(s: Suite) {
    let (client_id, _) = register_client(&s, cli("Console")).await;
    let (other_id, _) = register_client(&s, cli("Other")).await;
    let d = device_codes(&s, &client_id, "").await;
    assert_eq!(
        poll_error(&s, &other_id, "", &d.device_code)
            .await
            .as_deref(),
        Some("invalid_grant"),
        "another client's device code"
    );
    assert_eq!(
        poll_error(&s, &client_id, "", &d.device_code)
            .await
            .as_deref(),
        Some("authorization_pending"),
        "left alone for its own client"
    );
    assert_eq!(
        poll(&s, &client_id, "", "x".repeat(43).as_str())
            .await
            .err()
            .as_deref(),
        Some("invalid_grant")
    );

    // A client not registered for the grant: refused at both endpoints.
    let (web_id, web_secret) = register_client(&s, confidential("Web app")).await;
    assert_eq!(
        device_authorize(&s, &web_id, &web_secret, "")
            .await
            .err()
            .as_deref(),
        Some("unauthorized_client")
    );
    assert_eq!(
        poll_error(&s, &web_id, &web_secret, &d.device_code)
            .await
            .as_deref(),
        Some("unauthorized_client")
    );
    // A confidential client authenticates; scopes beyond its own are refused.
    let mut box_client = cli("Kiosk");
    box_client.r#type = ClientType::Confidential.into();
    let (kiosk, kiosk_secret) = register_client(&s, box_client).await;
    assert_eq!(
        device_authorize(&s, &kiosk, "wrong", "")
            .await
            .err()
            .as_deref(),
        Some("invalid_client")
    );
    assert_eq!(
        device_authorize(&s, &kiosk, &kiosk_secret, "admin")
            .await
            .err()
            .as_deref(),
        Some("invalid_scope")
    );
    assert!(
        device_authorize(&s, &kiosk, &kiosk_secret, "user:read")
            .await
            .is_ok()
    );
    // Unknown codes, however typed, ask again.
    for typed in ["", "BCDF-GHJK", "not a code at all", &"B".repeat(500)] {
        assert!(verify(&s, typed, "").await.is_err(), "{typed:.20}");
    }
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    a_device_is_allowed_in_a_browser_and_gets_its_tokens_once,
    polling_too_fast_is_told_to_slow_down,
    a_denied_device_gets_access_denied,
    an_expired_device_code_is_expired_token,
    device_codes_belong_to_their_client_and_their_grant_type,
);
