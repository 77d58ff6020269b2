use crate::helpers::{
    PASSWORD, Suite, auth_config, authed, channel, listener, start_auth, wait_serving,
};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use suite_proto::auth::{
    GetJwksRequest, ListSessionsRequest, RefreshRequest, auth_service_client::AuthServiceClient,
};
use suite_tokens::{Claims, SigningKey};

async fn published_jwks(client: &AuthServiceClient<tonic::transport::Channel>) -> JwkSet {
    let reply = client
        .clone()
        .get_jwks(GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    // Every key, as the gateway publishes them to relying parties.
    suite_tokens::keys::public_jwks_from_proto(&reply.keys)
}

/// What a third party does with our tokens: fetch the JWKS, pick the key by
/// `kid`, verify with jsonwebtoken, nothing of ours involved.
fn third_party_verify(jwks: &JwkSet, token: &str) -> Claims {
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    let kid = header.kid.expect("kid");
    let jwk = jwks.find(&kid).expect("the kid is published");
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_issuer(&["suite-auth"]);
    v.set_audience(&["suite"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_jwk(jwk).expect("key"), &v)
        .expect("verifies")
        .claims
}

async fn access_tokens_verify_with_the_published_jwks(s: Suite) {
    let user = s.register("lena").await;
    let t = s.login("lena", PASSWORD).await.expect("login");
    let jwks = published_jwks(&s.client).await;
    // The access-token key first, then the ID-token keys (RS256, ES256).
    let algs: Vec<String> = jwks
        .keys
        .iter()
        .filter_map(|k| k.common.key_algorithm.map(|a| a.to_string()))
        .collect();
    assert_eq!(algs, ["EdDSA", "RS256", "ES256"]);
    assert_eq!(jwks.keys[0].common.key_id.as_deref(), Some(s.key.kid()));
    let c = third_party_verify(&jwks, &t.access_token);
    assert_eq!(
        (c.sub.as_str(), c.sid.as_deref()),
        (user.id.as_str(), Some(t.session_id.as_str()))
    );
    assert_eq!(c.roles, vec!["user"]);
    assert_eq!(c.exp - c.iat, 900);
    assert!(c.nbf <= c.iat && !c.jti.is_empty());
    s.stop().await;
}

async fn a_rotated_key_keeps_old_tokens_valid_and_signs_the_new_ones(mut s: Suite) {
    s.register("milo").await;
    let before = s.login("milo", PASSWORD).await.expect("login");
    // Restart the auth service (same address, as behind a Service name) with a
    // new active key and the old one kept for verification. The user service
    // fetches the new key from it when it first sees the new key id.
    let addr = s.auth.addr;
    s.auth.stop().await;
    let dir = tempfile::tempdir().expect("dir");
    let old_pem = dir.path().join("old.pem");
    std::fs::write(&old_pem, s.key.to_pkcs8_pem()).expect("write");
    let new_key = SigningKey::generate_thumbprinted().expect("key");
    let mut config = auth_config(&s.auth_db, s.user.addr, &new_key);
    config.verification_key_files = vec![old_pem];
    let l = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    let mut rotated = start_auth(config, l);
    wait_serving(addr).await;
    let client = AuthServiceClient::new(channel(addr));

    let jwks = published_jwks(&client).await;
    let kids: Vec<_> = jwks
        .keys
        .iter()
        .filter(|k| k.common.key_algorithm == Some(jsonwebtoken::jwk::KeyAlgorithm::EdDSA))
        .filter_map(|k| k.common.key_id.clone())
        .collect();
    assert_eq!(kids, vec![new_key.kid().to_owned(), s.key.kid().to_owned()]);
    // The old token still verifies, here and for a third party.
    third_party_verify(&jwks, &before.access_token);
    client
        .clone()
        .list_sessions(authed(ListSessionsRequest::default(), &before.access_token))
        .await
        .expect("an old token is still accepted");
    // New tokens carry the new key id; old refresh tokens go on working (once
    // the user service may reload its keys: JWKS_REFRESH_MIN_SECS, here 1 s).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let after = client
        .clone()
        .refresh(RefreshRequest {
            refresh_token: before.refresh_token.clone(),
        })
        .await
        .expect("refresh")
        .into_inner();
    let header = jsonwebtoken::decode_header(&after.access_token).expect("header");
    assert_eq!(header.kid.as_deref(), Some(new_key.kid()));
    third_party_verify(&jwks, &after.access_token);
    rotated.stop().await;
    s.stop().await;
}

async fn a_rotated_id_token_key_is_published_beside_the_new_one_and_old_hints_still_count(
    s: Suite,
) {
    use crate::{
        clients::{confidential, register_client},
        oauth_steps::{code_via_pages, exchange, pkce, verify_id_token},
    };
    use suite_proto::auth::{EndSessionRequest, end_session_response};
    s.register("otto").await;
    let (client_id, secret) = register_client(&s, confidential("Rotating")).await;
    let (verifier, challenge) = pkce();
    let (code, session) = code_via_pages(&s, &client_id, &challenge, "otto").await;
    let old = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    let old_kid = jsonwebtoken::decode_header(&old.id_token)
        .expect("header")
        .kid
        .expect("kid");

    // The same address, a new RSA key, the old one kept for verification.
    let addr = s.auth.addr;
    let mut s = s;
    s.auth.stop().await;
    let dir = tempfile::tempdir().expect("dir");
    let old_pem = dir.path().join("old-rsa.pem");
    std::fs::copy(
        s.auth_config.oidc_rsa_key_file.clone().expect("rsa file"),
        &old_pem,
    )
    .expect("copy");
    let new_rsa = suite_tokens::IdTokenKey::generate(suite_tokens::IdTokenAlg::Rs256).expect("key");
    let new_pem = dir.path().join("rsa.pem");
    std::fs::write(&new_pem, new_rsa.to_pem()).expect("write");
    let mut config = s.auth_config.clone();
    config.oidc_rsa_key_file = Some(new_pem);
    config.oidc_verification_key_files = vec![old_pem];
    let l = tokio::net::TcpListener::bind(addr).await.expect("rebind");
    s.auth = start_auth(config, l);
    wait_serving(addr).await;

    let rs256: Vec<_> = published_jwks(&s.client)
        .await
        .keys
        .into_iter()
        .filter(|k| k.common.key_algorithm == Some(jsonwebtoken::jwk::KeyAlgorithm::RS256))
        .filter_map(|k| k.common.key_id)
        .collect();
    assert_eq!(rs256, vec![new_rsa.kid().to_owned(), old_kid.clone()]);
    // The old ID token still verifies for a relying party; new ones carry
    // the new key.
    verify_id_token(&s, &old.id_token, &client_id).await;
    let (verifier, challenge) = pkce();
    let (code, _) = code_via_pages(&s, &client_id, &challenge, "otto").await;
    let new = exchange(&s, &client_id, &secret, &code, &verifier)
        .await
        .expect("tokens");
    let header = jsonwebtoken::decode_header(&new.id_token).expect("header");
    assert_eq!(header.kid.as_deref(), Some(new_rsa.kid()));
    verify_id_token(&s, &new.id_token, &client_id).await;
    // And the old ID token is still a hint that signs its user out unasked.
    let ended = s
        .oauth()
        .end_session(EndSessionRequest {
            id_token_hint: old.id_token.clone(),
            browser_session: session,
            ..EndSessionRequest::default()
        })
        .await
        .expect("end session")
        .into_inner();
    assert!(
        matches!(
            ended.result,
            Some(end_session_response::Result::SignedOut(_))
        ),
        "{:?}",
        ended.result
    );
    s.stop().await;
}

async fn two_replicas_with_shared_keys_and_database_serve_each_others_tokens(s: Suite) {
    s.register("nina").await;
    let (l, addr) = listener().await;
    let mut replica = start_auth(s.auth_config.clone(), l);
    wait_serving(addr).await;
    let other = AuthServiceClient::new(channel(addr));

    let t = s.login("nina", PASSWORD).await.expect("login at replica 1");
    third_party_verify(&published_jwks(&other).await, &t.access_token);
    other
        .clone()
        .list_sessions(authed(ListSessionsRequest::default(), &t.access_token))
        .await
        .expect("replica 2 accepts replica 1's access token");
    let next = other
        .clone()
        .refresh(RefreshRequest {
            refresh_token: t.refresh_token.clone(),
        })
        .await
        .expect("replica 2 refreshes replica 1's refresh token")
        .into_inner();
    s.client
        .clone()
        .refresh(RefreshRequest {
            refresh_token: next.refresh_token,
        })
        .await
        .expect("and back again");
    replica.stop().await;
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    access_tokens_verify_with_the_published_jwks,
    a_rotated_key_keeps_old_tokens_valid_and_signs_the_new_ones,
    two_replicas_with_shared_keys_and_database_serve_each_others_tokens,
    a_rotated_id_token_key_is_published_beside_the_new_one_and_old_hints_still_count,
);

#[tokio::test]
async fn without_a_configured_key_one_is_generated_kept_and_reused() {
    let dir = tempfile::tempdir().expect("dir");
    let mut config = suite_testkit::hermetic::<suite_auth::Config>();
    config.data_dir = dir.path().to_owned();
    let first = suite_auth::keys::KeyRing::load(&config).expect("generated");
    let again = suite_auth::keys::KeyRing::load(&config).expect("reloaded");
    assert_eq!(first.active().kid(), again.active().kid());
}
