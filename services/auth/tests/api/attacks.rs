//! Each attack of issue 28, refused at the RPCs without side effects, and
//! RP-initiated logout that never redirects openly.

use crate::{
    clients::{confidential, register_client},
    helpers::Suite,
    oauth_steps::*,
};
use suite_proto::auth::{
    AuthorizationParameters, Client, EndSessionRequest, SignInRequest, TokenRequest,
    authorization_step::Step, end_session_response,
};

async fn bad_authorization_requests_are_refused_without_an_open_redirect(s: Suite) {
    let (client_id, _) = register_client(&s, confidential("Strict")).await;
    let (_, challenge) = pkce();
    for uri in [
        "https://evil.example/callback",
        "https://app.example.com/callbacK",
        "https://app.example.com/callback/",
        "https://app.example.com/callback?x=1",
        "",
    ] {
        let (step, _) = authorize(
            &s,
            AuthorizationParameters {
                redirect_uri: uri.into(),
                ..params(&client_id, &challenge)
            },
            "",
        )
        .await;
        assert!(matches!(step, Step::Error(_)), "{uri}: {step:?}");
    }
    let (step, _) = authorize(
        &s,
        AuthorizationParameters {
            client_id: "nobody".into(),
            ..params(&client_id, &challenge)
        },
        "",
    )
    .await;
    assert!(matches!(step, Step::Error(_)));
    for (tweak, error) in [
        (
            AuthorizationParameters {
                response_type: "token".into(),
                ..params(&client_id, &challenge)
            },
            "unsupported_response_type",
        ),
        (
            AuthorizationParameters {
                code_challenge_method: "plain".into(),
                ..params(&client_id, &challenge)
            },
            "invalid_request",
        ),
        (
            AuthorizationParameters {
                code_challenge: String::new(),
                code_challenge_method: String::new(),
                ..params(&client_id, &challenge)
            },
            "invalid_request",
        ),
        (
            AuthorizationParameters {
                scope: "openid admin".into(),
                ..params(&client_id, &challenge)
            },
            "invalid_scope",
        ),
        (
            AuthorizationParameters {
                request_object: true,
                ..params(&client_id, &challenge)
            },
            "request_not_supported",
        ),
    ] {
        let (step, _) = authorize(&s, tweak, "").await;
        let q = redirect_of(step);
        assert_eq!(q["error"], error);
        assert_eq!((q["state"].as_str(), q["iss"].as_str()), ("st4te", ISSUER));
        assert!(!q.contains_key("code"));
    }
    s.stop().await;
}

async fn forged_forms_are_refused_and_create_nothing(s: Suite) {
    s.register("quinn").await;
    let (client_id, _) = register_client(&s, confidential("Forms")).await;
    let (_, challenge) = pkce();
    let (step, _) = authorize(&s, params(&client_id, &challenge), "").await;
    let Step::SignIn(page) = step else {
        panic!("{step:?}")
    };
    // Another browser (its own binding), or a forged CSRF token.
    for (csrf, binding) in [
        (page.csrf_token.as_str(), "another-browser"),
        ("forged", BINDING),
        (page.csrf_token.as_str(), ""),
    ] {
        let (step, session) = sign_in(&s, &page.request_id, csrf, binding, "quinn").await;
        assert!(matches!(step, Step::Error(_)), "{step:?}");
        assert!(session.is_empty(), "no browser session");
    }
    // A wrong password: the page again, no hint which was wrong.
    let wrong = s
        .oauth()
        .sign_in(SignInRequest {
            request_id: page.request_id.clone(),
            csrf_token: page.csrf_token.clone(),
            browser_binding: BINDING.into(),
            login: "quinn".into(),
            password: "not the password at all".into(),
            user_agent: String::new(),
        })
        .await
        .expect("sign in")
        .into_inner()
        .step
        .expect("step");
    assert!(wrong.set_session.is_none());
    match wrong.step {
        Some(Step::SignIn(p)) => assert_eq!(p.error, "wrong login or password"),
        other => panic!("{other:?}"),
    }
    // The real browser signs in; a forged consent is refused.
    let (step, session) = sign_in(&s, &page.request_id, &page.csrf_token, BINDING, "quinn").await;
    let Step::Consent(c) = step else {
        panic!("{step:?}")
    };
    for (csrf, binding) in [
        (c.csrf_token.as_str(), "another-browser"),
        ("forged", BINDING),
    ] {
        let step = consent(&s, &c.request_id, csrf, binding, &session).await;
        assert!(matches!(step, Step::Error(_)), "{step:?}");
    }
    // Nothing was consented to: asking again shows the consent page.
    let (step, _) = authorize(&s, params(&client_id, &challenge), &session).await;
    assert!(matches!(step, Step::Consent(_)), "{step:?}");
    s.stop().await;
}

/// The sign-in page goes through the REST login's throttle: after the free
/// failures the login is locked, and the page says for how long.
async fn sign_in_failures_lock_the_login_as_a_rest_login_does(s: Suite) {
    s.register("xena").await;
    let (client_id, _) = register_client(&s, confidential("Locked")).await;
    let (_, challenge) = pkce();
    let (step, _) = authorize(&s, params(&client_id, &challenge), "").await;
    let Step::SignIn(page) = step else {
        panic!("{step:?}")
    };
    let attempt = |password: &'static str| {
        let mut oauth = s.oauth();
        let (id, csrf) = (page.request_id.clone(), page.csrf_token.clone());
        async move {
            oauth
                .sign_in(SignInRequest {
                    request_id: id,
                    csrf_token: csrf,
                    browser_binding: BINDING.into(),
                    login: "xena".into(),
                    password: password.into(),
                    user_agent: String::new(),
                })
                .await
                .expect("sign in")
                .into_inner()
                .step
                .expect("step")
        }
    };
    // Defaults: 3 free failures, then a lock.
    for _ in 0..4 {
        attempt("not the password at all").await;
    }
    let locked = attempt("not the password at all").await;
    assert!(locked.set_session.is_none());
    let Some(Step::SignIn(p)) = locked.step else {
        panic!("{locked:?}")
    };
    assert!(p.retry_after_secs > 0, "{p:?}");
    // Even the right password waits for the lock.
    let right = attempt(crate::helpers::PASSWORD).await;
    assert!(right.set_session.is_none());
    assert!(matches!(right.step, Some(Step::SignIn(p)) if p.retry_after_secs > 0));
    // The REST login sees the same lock.
    let rest = s
        .login("xena", crate::helpers::PASSWORD)
        .await
        .expect_err("locked");
    assert_eq!(rest.code(), tonic::Code::ResourceExhausted);
    s.stop().await;
}

async fn stolen_or_misused_codes_are_refused(s: Suite) {
    s.register("rita").await;
    let (client_id, secret) = register_client(&s, confidential("Victim")).await;
    let (other_id, other_secret) = register_client(&s, confidential("Other")).await;
    let (verifier, challenge) = pkce();

    // A code used twice: the second is refused and the first's tokens die.
    let (code, _) = code_via_pages(&s, &client_id, &challenge, "rita").await;
    let first = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("first");
    assert_eq!(
        exchange(&s, &client_id, &secret, &code, &verifier)
            .await
            .err()
            .as_deref(),
        Some("invalid_grant")
    );
    assert_eq!(
        refresh(&s, &client_id, &secret, &first.refresh_token)
            .await
            .err()
            .as_deref(),
        Some("invalid_grant")
    );
    assert!(
        !introspect(&s, &client_id, &secret, &first.access_token)
            .await
            .active
    );

    // One code redeemed by several at once (the thief races the app): at
    // most one gets tokens, and if one did, they die with the replay.
    for _ in 0..3 {
        let (code, _) = code_via_pages(&s, &client_id, &challenge, "rita").await;
        let race = || exchange(&s, &client_id, &secret, &code, &verifier);
        let (a, b, c, d) = tokio::join!(race(), race(), race(), race());
        let answers = [a, b, c, d];
        let winners: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
        assert!(
            winners.len() <= 1,
            "{} redemptions of one code",
            winners.len()
        );
        assert!(
            answers
                .iter()
                .filter_map(|a| a.as_ref().err())
                .all(|e| e == "invalid_grant")
        );
        for tokens in winners {
            assert!(
                !introspect(&s, &client_id, &secret, &tokens.access_token)
                    .await
                    .active,
                "a raced code's tokens live on"
            );
        }
    }

    // A code redeemed by another client, with the wrong verifier, without
    // one, with a wrong secret or redirect URI: refused, and the code still
    // works for its own client afterwards.
    let (code, _) = code_via_pages(&s, &client_id, &challenge, "rita").await;
    assert_eq!(
        exchange(&s, &other_id, &other_secret, &code, &verifier)
            .await
            .err()
            .as_deref(),
        Some("invalid_grant")
    );
    let (wrong_verifier, _) = pkce();
    for v in [wrong_verifier.as_str(), ""] {
        assert_eq!(
            exchange(&s, &client_id, &secret, &code, v)
                .await
                .err()
                .as_deref(),
            Some("invalid_grant")
        );
    }
    assert_eq!(
        exchange(&s, &client_id, "wrong secret", &code, &verifier)
            .await
            .err()
            .as_deref(),
        Some("invalid_client")
    );
    assert_eq!(
        exchange(&s, &client_id, "", &code, &verifier)
            .await
            .err()
            .as_deref(),
        Some("invalid_client"),
        "a confidential client without its secret"
    );
    let other_redirect = token(
        &s,
        TokenRequest {
            client: auth(&client_id, &secret),
            grant_type: "authorization_code".into(),
            code: code.clone(),
            redirect_uri: "https://app.example.com/other".into(),
            code_verifier: verifier.clone(),
            ..TokenRequest::default()
        },
    )
    .await;
    assert_eq!(other_redirect.err().as_deref(), Some("invalid_grant"));
    exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("its own client redeems it");

    // A public client with a secret is refused.
    let (public_id, _) = register_client(
        &s,
        Client {
            name: "SPA".into(),
            r#type: suite_proto::auth::ClientType::Public.into(),
            redirect_uris: vec![REDIRECT.into()],
            ..Client::default()
        },
    )
    .await;
    let (code, _) = code_via_pages(&s, &public_id, &challenge, "rita").await;
    assert_eq!(
        exchange(&s, &public_id, "a secret", &code, &verifier)
            .await
            .err()
            .as_deref(),
        Some("invalid_client")
    );
    exchange(&s, &public_id, "", &code, &verifier)
        .await
        .expect("a public client, PKCE alone");
    s.stop().await;
}

async fn end_session(s: &Suite, req: EndSessionRequest) -> (end_session_response::Result, bool) {
    let r = s
        .oauth()
        .end_session(req)
        .await
        .expect("end session")
        .into_inner();
    (r.result.expect("result"), r.clear_session)
}

/// EndSession in this browser (its session and binding), without a hint.
async fn end_session_unhinted(s: &Suite, session: &str) -> end_session_response::Result {
    let req = EndSessionRequest {
        browser_session: session.into(),
        browser_binding: BINDING.into(),
        ..EndSessionRequest::default()
    };
    end_session(s, req).await.0
}

async fn rp_initiated_logout_ends_the_sessions_and_never_redirects_openly(s: Suite) {
    s.register("sven").await;
    let (client_id, secret) = register_client(&s, confidential("Logout")).await;
    let (other_id, other_secret) = register_client(&s, confidential("Other")).await;
    let (verifier, challenge) = pkce();
    let (code, session) = code_via_pages(&s, &client_id, &challenge, "sven").await;
    let t = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    // The same browser signs in to the other client (SSO: consent only).
    let (step, _) = authorize(&s, params(&other_id, &challenge), &session).await;
    let Step::Consent(c) = step else {
        panic!("{step:?}")
    };
    let step = consent(&s, &c.request_id, &c.csrf_token, BINDING, &session).await;
    let code = redirect_of(step)["code"].clone();
    let other = exchange(&s, &other_id, &other_secret, &code, &verifier)
        .await
        .expect("tokens");

    // A hint for another client, an unregistered return address: error pages.
    for req in [
        EndSessionRequest {
            id_token_hint: other.id_token.clone(),
            client_id: client_id.clone(),
            browser_session: session.clone(),
            ..EndSessionRequest::default()
        },
        EndSessionRequest {
            id_token_hint: t.id_token.clone(),
            post_logout_redirect_uri: "https://evil.example/".into(),
            browser_session: session.clone(),
            ..EndSessionRequest::default()
        },
        EndSessionRequest {
            post_logout_redirect_uri: "https://app.example.com/bye".into(),
            browser_session: session.clone(),
            ..EndSessionRequest::default()
        },
    ] {
        let (result, clear) = end_session(&s, req).await;
        assert!(
            matches!(result, end_session_response::Result::Error(_)),
            "{result:?}"
        );
        assert!(!clear);
    }
    assert!(
        introspect(&s, &client_id, &secret, &t.refresh_token)
            .await
            .active
    );

    // Without a hint: asked first; a forged confirmation is refused.
    let result = end_session_unhinted(&s, &session).await;
    let end_session_response::Result::Confirm(page) = result else {
        panic!("{result:?}")
    };
    assert_eq!(page.username, "sven");
    let (result, _) = end_session(
        &s,
        EndSessionRequest {
            browser_session: session.clone(),
            browser_binding: "another-browser".into(),
            confirmed: true,
            csrf_token: page.csrf_token.clone(),
            ..EndSessionRequest::default()
        },
    )
    .await;
    assert!(matches!(result, end_session_response::Result::Error(_)));

    // Another user's ID token is no reason to end this browser's session
    // unasked.
    s.register("tess").await;
    let (code, _) = code_via_pages(&s, &client_id, &challenge, "tess").await;
    let hers = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    let (result, clear) = end_session(
        &s,
        EndSessionRequest {
            id_token_hint: hers.id_token.clone(),
            browser_session: session.clone(),
            browser_binding: BINDING.into(),
            ..EndSessionRequest::default()
        },
    )
    .await;
    assert!(
        matches!(result, end_session_response::Result::Confirm(_)),
        "{result:?}"
    );
    assert!(!clear);
    // A code issued before the sign-out, exchanged after it, is refused.
    let (step, _) = authorize(&s, params(&client_id, &challenge), &session).await;
    let pending_code = redirect_of(step)["code"].clone();
    // With a valid hint: at once, back to the registered address with state.
    let (result, clear) = end_session(
        &s,
        EndSessionRequest {
            id_token_hint: t.id_token.clone(),
            post_logout_redirect_uri: "https://app.example.com/bye".into(),
            state: "later".into(),
            browser_session: session.clone(),
            ..EndSessionRequest::default()
        },
    )
    .await;
    assert_eq!(
        result,
        end_session_response::Result::RedirectUri("https://app.example.com/bye?state=later".into())
    );
    assert!(clear);
    // Every session of that browser ended, whichever client's.
    assert!(
        !introspect(&s, &client_id, &secret, &t.refresh_token)
            .await
            .active
    );
    assert!(
        !introspect(&s, &other_id, &other_secret, &other.refresh_token)
            .await
            .active
    );
    assert_eq!(
        exchange(&s, &client_id, &secret, &pending_code, &verifier)
            .await
            .err()
            .as_deref(),
        Some("invalid_grant")
    );
    // Signed out already: nothing to confirm, the signed-out page.
    let result = end_session_unhinted(&s, &session).await;
    assert_eq!(result, end_session_response::Result::SignedOut(true));
    // And the browser must sign in again.
    let (step, _) = authorize(&s, params(&client_id, &challenge), &session).await;
    assert!(matches!(step, Step::SignIn(_)), "{step:?}");
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    bad_authorization_requests_are_refused_without_an_open_redirect,
    forged_forms_are_refused_and_create_nothing,
    stolen_or_misused_codes_are_refused,
    rp_initiated_logout_ends_the_sessions_and_never_redirects_openly,
    sign_in_failures_lock_the_login_as_a_rest_login_does,
);
