//! The provider's flows through the RPCs the gateway calls: Authorize →
//! SignIn → Consent → Token with PKCE, ID tokens checked as a third party
//! would, refresh, client credentials, introspection, revocation, UserInfo,
//! consent withdrawal.

use crate::{
    clients::{confidential, register_client},
    helpers::{PASSWORD, Suite},
    oauth_steps::*,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use suite_proto::auth::{
    AuthorizationParameters, Client, IntrospectRequest, RevokeRequest, RevokeResponse,
    TokenRequest, UserInfoRequest, authorization_step::Step, introspect_response,
    user_info_response,
};

async fn the_code_flow_with_pkce_gives_tokens_a_relying_party_accepts(s: Suite) {
    let config = s
        .oauth()
        .get_provider_configuration(suite_proto::auth::GetProviderConfigurationRequest {})
        .await
        .expect("configuration")
        .into_inner();
    assert_eq!(config.issuer, ISSUER);
    assert_eq!(config.id_token_signing_alg_values_supported[0], "RS256");
    assert!(
        config
            .scopes_supported
            .iter()
            .any(|s| s == "offline_access")
    );
    let user = s.register("olga").await;
    let (client_id, secret) = register_client(&s, confidential("Shop")).await;
    let (verifier, challenge) = pkce();
    let (code, session) = code_via_pages(&s, &client_id, &challenge, "olga").await;
    let t = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.scope, "openid profile email offline_access");
    assert!(
        !t.refresh_token.is_empty(),
        "offline_access gives a refresh token"
    );

    let id = verify_id_token(&s, &t.id_token, &client_id).await;
    assert_eq!(id["sub"], user.id.as_str());
    assert_eq!(id["nonce"], "n0nce");
    assert_eq!(id["azp"], client_id.as_str());
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
    assert_eq!(id["email"], "olga@example.com");
    assert_eq!(id["email_verified"], false);
    assert_eq!(id["preferred_username"], "olga");
    let at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(t.access_token.as_bytes())[..16]);
    assert_eq!(id["at_hash"], at_hash.as_str());
    assert!(id["auth_time"].as_i64().is_some() && id["sid"].as_str().is_some());

    // The access token: EdDSA at+jwt with client_id and scope, accepted by
    // the user service like any other.
    let claims: suite_tokens::Claims = jsonwebtoken::dangerous::insecure_decode(&t.access_token)
        .expect("claims")
        .claims;
    assert_eq!(claims.client_id.as_deref(), Some(client_id.as_str()));
    assert_eq!(claims.scope.as_deref(), Some(t.scope.as_str()));
    assert!(claims.sid.is_some());

    let info = match s
        .oauth()
        .user_info(UserInfoRequest {
            access_token: t.access_token.clone(),
        })
        .await
        .expect("userinfo")
        .into_inner()
        .result
    {
        Some(user_info_response::Result::Claims(c)) => c,
        other => panic!("{other:?}"),
    };
    assert_eq!(info.sub, user.id);
    assert_eq!(info.email.as_deref(), Some("olga@example.com"));
    assert_eq!(info.preferred_username.as_deref(), Some("olga"));

    let i = introspect(&s, &client_id, &secret, &t.access_token).await;
    assert!(i.active);
    assert_eq!(
        (i.client_id.as_str(), i.username.as_str()),
        (client_id.as_str(), "olga")
    );

    // Refresh: rotated, narrowed scopes allowed, wider refused.
    let next = refresh(&s, &client_id, &secret, &t.refresh_token)
        .await
        .expect("refresh");
    assert_ne!(next.refresh_token, t.refresh_token);
    let wider = token(
        &s,
        TokenRequest {
            client: auth(&client_id, &secret),
            grant_type: "refresh_token".into(),
            refresh_token: next.refresh_token.clone(),
            scope: "openid user:read".into(),
            ..TokenRequest::default()
        },
    )
    .await;
    assert_eq!(wider.err().as_deref(), Some("invalid_scope"));
    let narrow = token(
        &s,
        TokenRequest {
            client: auth(&client_id, &secret),
            grant_type: "refresh_token".into(),
            refresh_token: next.refresh_token.clone(),
            scope: "openid".into(),
            ..TokenRequest::default()
        },
    )
    .await
    .expect("narrower");
    assert_eq!(narrow.scope, "openid");

    // Single sign-on: the next request goes straight back with a code
    // (consent remembered, the browser session known).
    let (_, challenge2) = pkce();
    let (step, _) = authorize(&s, params(&client_id, &challenge2), &session).await;
    assert!(redirect_of(step).contains_key("code"));
    // prompt=none without a session: login_required, by redirect.
    let (step, _) = authorize(
        &s,
        AuthorizationParameters {
            prompt: "none".into(),
            ..params(&client_id, &challenge2)
        },
        "",
    )
    .await;
    assert_eq!(redirect_of(step)["error"], "login_required");
    s.stop().await;
}

async fn client_credentials_introspection_and_revocation(s: Suite) {
    let (client_id, secret) = register_client(&s, confidential("Machine")).await;
    let t = token(
        &s,
        TokenRequest {
            client: auth(&client_id, &secret),
            grant_type: "client_credentials".into(),
            ..TokenRequest::default()
        },
    )
    .await
    .expect("tokens");
    assert_eq!(t.scope, "user:read", "the client's API scopes");
    assert!(t.refresh_token.is_empty() && t.id_token.is_empty());
    let c: suite_tokens::Claims = jsonwebtoken::dangerous::insecure_decode(&t.access_token)
        .expect("claims")
        .claims;
    assert_eq!(
        (c.sub.as_str(), c.sid.as_deref()),
        (client_id.as_str(), None)
    );
    assert!(c.roles.is_empty());
    let asked_openid = token(
        &s,
        TokenRequest {
            client: auth(&client_id, &secret),
            grant_type: "client_credentials".into(),
            scope: "openid".into(),
            ..TokenRequest::default()
        },
    )
    .await;
    assert_eq!(asked_openid.err().as_deref(), Some("invalid_scope"));
    let i = introspect(&s, &client_id, &secret, &t.access_token).await;
    assert!(i.active && i.token_type == "access_token");
    assert!(!introspect(&s, &client_id, &secret, "garbage").await.active);
    let refused = s
        .oauth()
        .introspect(IntrospectRequest {
            client: auth(&client_id, "wrong"),
            token: t.access_token.clone(),
            token_type_hint: String::new(),
        })
        .await
        .expect("introspect")
        .into_inner();
    assert!(
        matches!(refused.result, Some(introspect_response::Result::Error(e)) if e.error == "invalid_client")
    );

    // Revocation of a user's refresh token ends its session.
    s.register("pavel").await;
    let (verifier, challenge) = pkce();
    let (code, _) = code_via_pages(&s, &client_id, &challenge, "pavel").await;
    let user_tokens = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    assert!(
        introspect(&s, &client_id, &secret, &user_tokens.refresh_token)
            .await
            .active
    );
    let r = revoke(
        &s,
        &client_id,
        &secret,
        &user_tokens.refresh_token,
        "refresh_token",
    )
    .await;
    assert!(r.error.is_none());
    assert!(
        !introspect(&s, &client_id, &secret, &user_tokens.refresh_token)
            .await
            .active
    );
    assert!(
        !introspect(&s, &client_id, &secret, &user_tokens.access_token)
            .await
            .active
    );
    assert_eq!(
        refresh(&s, &client_id, &secret, &user_tokens.refresh_token)
            .await
            .err()
            .as_deref(),
        Some("invalid_grant")
    );
    // A client's own token carries no openid: no UserInfo.
    let refused = s
        .oauth()
        .user_info(UserInfoRequest {
            access_token: t.access_token.clone(),
        })
        .await
        .expect("userinfo")
        .into_inner();
    assert!(
        matches!(&refused.result, Some(user_info_response::Result::Error(e)) if e.error == "insufficient_scope"),
        "{refused:?}"
    );
    // Revoking an access token ends its session too.
    let (code, _) = code_via_pages(&s, &client_id, &challenge, "pavel").await;
    let again = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    revoke(&s, &client_id, &secret, &again.access_token, "access_token").await;
    assert!(
        !introspect(&s, &client_id, &secret, &again.refresh_token)
            .await
            .active
    );
    // An unknown token is fine.
    let r = revoke(&s, &client_id, &secret, "unknown", "").await;
    assert!(r.error.is_none());
    s.stop().await;
}

/// Error pages for what cannot be trusted; redirects for the rest.
async fn a_withdrawn_consent_ends_the_clients_sessions_and_is_asked_again(s: Suite) {
    use crate::helpers::authed;
    use suite_proto::auth::{ListConsentsRequest, RevokeConsentRequest};
    s.register("tove").await;
    let (client_id, secret) = register_client(&s, confidential("Consented")).await;
    let (verifier, challenge) = pkce();
    let (code, session) = code_via_pages(&s, &client_id, &challenge, "tove").await;
    let t = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    let me = s.login("tove", PASSWORD).await.expect("login").access_token;
    let listed = s
        .consents()
        .list_consents(authed(ListConsentsRequest::default(), &me))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.consents.len(), 1);
    assert_eq!(listed.consents[0].client_name, "Consented");
    assert_eq!(
        listed.consents[0].scopes,
        ["openid", "profile", "email", "offline_access"]
    );
    s.consents()
        .revoke_consent(authed(
            RevokeConsentRequest {
                client_id: client_id.clone(),
                user_id: String::new(),
            },
            &me,
        ))
        .await
        .expect("revoke");
    assert_eq!(
        refresh(&s, &client_id, &secret, &t.refresh_token)
            .await
            .err()
            .as_deref(),
        Some("invalid_grant")
    );
    let (step, _) = authorize(&s, params(&client_id, &challenge), &session).await;
    assert!(matches!(step, Step::Consent(_)), "{step:?}");
    s.stop().await;
}

/// ES256 and EdDSA on request: the ID token's header says so, the JWKS
/// verifies it, and `at_hash` uses the algorithm's hash (SHA-512 for
/// Ed25519, as OpenID libraries compute it).
async fn id_tokens_are_signed_with_the_clients_algorithm(s: Suite) {
    use jsonwebtoken::Algorithm;
    use sha2::Sha512;
    s.register("ulf").await;
    for (alg, jose) in [("ES256", Algorithm::ES256), ("EdDSA", Algorithm::EdDSA)] {
        let (client_id, secret) = register_client(
            &s,
            Client {
                id_token_signed_response_alg: alg.into(),
                ..confidential(alg)
            },
        )
        .await;
        let (verifier, challenge) = pkce();
        let (code, _) = code_via_pages(&s, &client_id, &challenge, "ulf").await;
        let t = exchange(&s, &client_id, &secret, &code, &verifier)
            .await
            .expect("tokens");
        let header = jsonwebtoken::decode_header(&t.id_token).expect("header");
        assert_eq!(header.alg, jose);
        let id = verify_id_token(&s, &t.id_token, &client_id).await;
        let expected = if alg == "EdDSA" {
            URL_SAFE_NO_PAD.encode(&Sha512::digest(t.access_token.as_bytes())[..32])
        } else {
            URL_SAFE_NO_PAD.encode(&Sha256::digest(t.access_token.as_bytes())[..16])
        };
        assert_eq!(id["at_hash"], expected.as_str());
    }
    s.stop().await;
}

/// prompt, max_age and login_hint; first-party clients skip consent; a
/// refresh token only with offline_access (or for a first-party client).
async fn prompts_first_party_clients_and_offline_access(s: Suite) {
    s.register("vera").await;
    let (client_id, secret) = register_client(&s, confidential("Prompted")).await;
    let (verifier, challenge) = pkce();
    let page = sign_in_page(
        &s,
        AuthorizationParameters {
            login_hint: "vera".into(),
            ..params(&client_id, &challenge)
        },
    )
    .await;
    assert_eq!(page.login_hint, "vera");
    let (_, session) = sign_in(&s, &page.request_id, &page.csrf_token, BINDING, "vera").await;
    // Signed in, but not yet allowed: prompt=none cannot ask.
    let (step, _) = authorize(
        &s,
        AuthorizationParameters {
            prompt: "none".into(),
            ..params(&client_id, &challenge)
        },
        &session,
    )
    .await;
    assert_eq!(redirect_of(step)["error"], "consent_required");
    // prompt=login, or a max_age already past, signs in again.
    for p in [
        AuthorizationParameters {
            prompt: "login".into(),
            ..params(&client_id, &challenge)
        },
        AuthorizationParameters {
            max_age: "0".into(),
            ..params(&client_id, &challenge)
        },
    ] {
        let (step, _) = authorize(&s, p, &session).await;
        assert!(matches!(step, Step::SignIn(_)), "{step:?}");
    }

    // First-party: no consent asked; a refresh token without offline_access.
    let (first_id, first_secret) = register_client(
        &s,
        Client {
            first_party: true,
            ..confidential("Own app")
        },
    )
    .await;
    let (step, _) = authorize(
        &s,
        AuthorizationParameters {
            scope: "openid".into(),
            ..params(&first_id, &challenge)
        },
        &session,
    )
    .await;
    let code = redirect_of(step)["code"].clone();
    let t = exchange(&s, &first_id, &first_secret, &code, &verifier)
        .await
        .expect("tokens");
    assert!(!t.refresh_token.is_empty());
    // Third-party without offline_access: no refresh token.
    let (step, _) = authorize(
        &s,
        AuthorizationParameters {
            scope: "openid".into(),
            ..params(&client_id, &challenge)
        },
        &session,
    )
    .await;
    let Step::Consent(c) = step else {
        panic!("{step:?}")
    };
    let step = consent(&s, &c.request_id, &c.csrf_token, BINDING, &session).await;
    let code = redirect_of(step)["code"].clone();
    let t = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    assert!(t.refresh_token.is_empty() && !t.id_token.is_empty());
    s.stop().await;
}

/// Deleting a client ends its sessions with their events: its access
/// tokens are refused (here by the auth service's own verifier, fed by the
/// events) within a second.
async fn a_deleted_clients_access_tokens_die_within_a_second(s: Suite) {
    use crate::helpers::authed;
    use suite_proto::auth::{DeleteClientRequest, ListConsentsRequest};
    s.register("wim").await;
    let (client_id, secret) = register_client(&s, confidential("Doomed")).await;
    let (verifier, challenge) = pkce();
    let p = AuthorizationParameters {
        scope: "openid user:read offline_access".into(),
        ..params(&client_id, &challenge)
    };
    let (code, _) = code_via_pages_with(&s, p, "wim").await;
    let t = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    let list = |token: String| {
        let mut consents = s.consents();
        async move {
            consents
                .list_consents(authed(ListConsentsRequest::default(), &token))
                .await
        }
    };
    list(t.access_token.clone()).await.expect("the token works");
    s.clients()
        .delete_client(authed(
            DeleteClientRequest {
                client_id: client_id.clone(),
            },
            &s.service_token_of("suitectl"),
        ))
        .await
        .expect("delete");
    suite_testkit::eventually(
        "the deleted client's access token refused",
        std::time::Duration::from_secs(1),
        async || list(t.access_token.clone()).await.is_err(),
    )
    .await;
    assert_eq!(
        refresh(&s, &client_id, &secret, &t.refresh_token)
            .await
            .err()
            .as_deref(),
        Some("invalid_client")
    );
    s.stop().await;
}

/// Revokes `token` (with `hint`) as the client: the answer.
async fn revoke(
    s: &Suite,
    client_id: &str,
    secret: &str,
    token: &str,
    hint: &str,
) -> RevokeResponse {
    s.oauth()
        .revoke(RevokeRequest {
            client: auth(client_id, secret),
            token: token.into(),
            token_type_hint: hint.into(),
        })
        .await
        .expect("revoke")
        .into_inner()
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    prompts_first_party_clients_and_offline_access,
    a_deleted_clients_access_tokens_die_within_a_second,
    id_tokens_are_signed_with_the_clients_algorithm,
    the_code_flow_with_pkce_gives_tokens_a_relying_party_accepts,
    client_credentials_introspection_and_revocation,
    a_withdrawn_consent_ends_the_clients_sessions_and_is_asked_again,
);
