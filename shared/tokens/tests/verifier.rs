//! The shared verifier against hostile tokens, one attack per test. Every
//! token here would be accepted by a sloppy verifier; ours must refuse it.
// The test binary's helpers fail their test loudly too (clippy.toml lets
// #[test] functions do so, and clippy 1.95 does not see these as tests).
#![allow(clippy::expect_used, clippy::panic)]

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::time::Duration;
use suite_tokens::{
    SigningKey, TokenError, TokenRules, Verifier,
    jwks::{JwksSource, KeyCache},
    jwks_of,
};

const ISS: &str = "suite-auth";
const AUD: &str = "suite";

struct Fixture {
    key: SigningKey,
    auth: Verifier,
}

async fn fixture() -> Fixture {
    let key = SigningKey::generate("k1").expect("key");
    let jwks = jwks_of(std::slice::from_ref(&key)).expect("jwks");
    let cache = KeyCache::new(Some(JwksSource::Static(jwks)), Duration::from_secs(5));
    cache.load().await.expect("load");
    let rules = TokenRules {
        issuer: ISS.into(),
        audiences: vec![AUD.into()],
        leeway_secs: 5,
        admins_need_second_factor: false,
    };
    Fixture {
        key,
        auth: Verifier::new(cache, rules),
    }
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

fn good_claims() -> Value {
    let now = now();
    json!({"iss": ISS, "aud": AUD, "sub": "u1", "exp": now + 600, "iat": now, "nbf": now,
           "jti": "j1", "roles": ["admin"]})
}

fn good_header() -> Value {
    json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"})
}

/// A token from raw header and claims JSON, signed with `key` (EdDSA).
fn raw_token(header: &Value, claims: &Value, key: &EncodingKey) -> String {
    let msg = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = jsonwebtoken::crypto::sign(msg.as_bytes(), key, Algorithm::EdDSA).expect("sign");
    format!("{msg}.{sig}")
}

impl Fixture {
    fn token(&self, header: &Value, claims: &Value) -> String {
        raw_token(header, claims, self.key.encoding_key())
    }

    async fn refuses(&self, token: &str) -> TokenError {
        match self.auth.verify(token).await {
            Ok(c) => panic!("accepted a hostile token: {c:?}"),
            Err(e) => e,
        }
    }
}

#[tokio::test]
async fn a_good_token_verifies() {
    let f = fixture().await;
    let claims = f
        .auth
        .verify(&f.token(&good_header(), &good_claims()))
        .await
        .expect("valid");
    assert_eq!(
        (claims.sub.as_str(), claims.roles.as_slice()),
        ("u1", &["admin".to_owned()][..])
    );
}

#[tokio::test]
async fn alg_none_in_any_spelling_with_an_empty_signature_is_refused() {
    let f = fixture().await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "k1"});
        let token = format!(
            "{}.{}.",
            B64.encode(header.to_string()),
            B64.encode(good_claims().to_string())
        );
        f.refuses(&token).await;
    }
}

#[tokio::test]
async fn an_empty_signature_is_refused() {
    let f = fixture().await;
    let good = f.token(&good_header(), &good_claims());
    let unsigned = format!("{}.", good.rsplit_once('.').expect("parts").0);
    f.refuses(&unsigned).await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_bytes_is_refused() {
    let f = fixture().await;
    let jwk = f.key.public_jwk().expect("jwk");
    let public = serde_json::to_vec(&jwk).expect("json");
    let x = serde_json::to_value(&jwk).expect("value")["x"]
        .as_str()
        .expect("x")
        .to_owned();
    for secret in [public, B64.decode(x).expect("raw public key")] {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some("k1".into());
        let token =
            jsonwebtoken::encode(&header, &good_claims(), &EncodingKey::from_secret(&secret))
                .expect("hs256");
        f.refuses(&token).await;
    }
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let f = fixture().await;
    let good = f.token(&good_header(), &good_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let mut claims = good_claims();
    claims["sub"] = json!("someone-else");
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(claims.to_string()),
        parts[2]
    );
    f.refuses(&forged).await;
}

#[tokio::test]
async fn a_tampered_signature_is_refused() {
    let f = fixture().await;
    let good = f.token(&good_header(), &good_claims());
    let (msg, sig) = good.rsplit_once('.').expect("parts");
    let mut raw = B64.decode(sig).expect("sig");
    raw[0] ^= 1;
    f.refuses(&format!("{msg}.{}", B64.encode(raw))).await;
}

#[tokio::test]
async fn an_expired_token_is_refused_as_expired() {
    let f = fixture().await;
    let mut claims = good_claims();
    claims["exp"] = json!(now() - 60);
    assert!(matches!(
        f.refuses(&f.token(&good_header(), &claims)).await,
        TokenError::Expired
    ));
}

#[tokio::test]
async fn a_token_not_yet_valid_is_refused() {
    let f = fixture().await;
    let mut claims = good_claims();
    claims["nbf"] = json!(now() + 600);
    f.refuses(&f.token(&good_header(), &claims)).await;
}

#[tokio::test]
async fn a_wrong_issuer_is_refused() {
    let f = fixture().await;
    let mut claims = good_claims();
    claims["iss"] = json!("https://evil.example");
    f.refuses(&f.token(&good_header(), &claims)).await;
}

#[tokio::test]
async fn a_wrong_audience_is_refused() {
    let f = fixture().await;
    let mut claims = good_claims();
    claims["aud"] = json!(["another-api"]);
    f.refuses(&f.token(&good_header(), &claims)).await;
}

#[tokio::test]
async fn an_unknown_kid_is_refused() {
    let f = fixture().await;
    let mut header = good_header();
    header["kid"] = json!("k2");
    f.refuses(&f.token(&header, &good_claims())).await;
}

#[tokio::test]
async fn kids_with_path_or_sql_characters_are_refused() {
    let f = fixture().await;
    for kid in ["../../dev/null", "' OR 1=1--", "k1\0", "/etc/passwd", ""] {
        let mut header = good_header();
        header["kid"] = json!(kid);
        f.refuses(&f.token(&header, &good_claims())).await;
    }
}

#[tokio::test]
async fn a_header_jwk_or_jku_naming_the_attackers_key_is_ignored() {
    let f = fixture().await;
    let attacker = SigningKey::generate("k1").expect("key");
    let attacker_jwk = serde_json::to_value(attacker.public_jwk().expect("jwk")).expect("json");
    let embedded = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1", "jwk": attacker_jwk});
    f.refuses(&raw_token(
        &embedded,
        &good_claims(),
        attacker.encoding_key(),
    ))
    .await;
    let jku = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "k1", "jku": "https://evil.example/jwks.json",
                     "x5u": "https://evil.example/cert.pem"});
    f.refuses(&raw_token(&jku, &good_claims(), attacker.encoding_key()))
        .await;
}

#[tokio::test]
async fn exp_or_nbf_given_as_strings_are_refused() {
    let f = fixture().await;
    for field in ["exp", "nbf"] {
        let mut claims = good_claims();
        let value = claims[field].as_i64().expect("number");
        claims[field] = json!(value.to_string());
        f.refuses(&f.token(&good_header(), &claims)).await;
    }
}

#[tokio::test]
async fn a_token_without_exp_is_refused() {
    let f = fixture().await;
    let mut claims = good_claims();
    claims.as_object_mut().expect("object").remove("exp");
    f.refuses(&f.token(&good_header(), &claims)).await;
}

#[tokio::test]
async fn two_or_four_parts_and_bad_base64_are_refused() {
    let f = fixture().await;
    let good = f.token(&good_header(), &good_claims());
    let (msg, _) = good.rsplit_once('.').expect("parts");
    f.refuses(msg).await;
    f.refuses(&format!("{good}.extra")).await;
    f.refuses(&good.replacen('e', "*", 1)).await;
    f.refuses("!!!.@@@.###").await;
}

#[tokio::test]
async fn a_token_over_8_kib_is_refused_unread() {
    let f = fixture().await;
    let mut claims = good_claims();
    claims["pad"] = json!("x".repeat(9 * 1024));
    let big = f.token(&good_header(), &claims);
    assert!(matches!(
        f.refuses(&big).await,
        TokenError::Invalid("too long")
    ));
}

#[tokio::test]
async fn something_that_is_not_a_jwt_is_refused() {
    let f = fixture().await;
    for junk in [
        "",
        "hello",
        "Bearer x",
        "{\"alg\":\"EdDSA\"}",
        "....",
        "\u{1F600}.\u{1F600}.\u{1F600}",
    ] {
        f.refuses(junk).await;
    }
}

#[tokio::test]
async fn a_token_of_another_type_is_refused() {
    let f = fixture().await;
    for typ in [json!("JWT"), json!("id+jwt"), Value::Null] {
        let mut header = good_header();
        header["typ"] = typ;
        f.refuses(&f.token(&header, &good_claims())).await;
    }
}

#[tokio::test]
async fn a_remembered_token_is_refused_once_its_key_is_gone() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("jwks.json");
    let old = SigningKey::generate("old").expect("key");
    let new = SigningKey::generate("new").expect("key");
    let write = |key: &SigningKey| {
        let jwks = jwks_of(std::slice::from_ref(key)).expect("jwks");
        std::fs::write(&path, serde_json::to_vec(&jwks).expect("json")).expect("write");
    };
    write(&old);
    let cache = KeyCache::new(Some(JwksSource::File(path.clone())), Duration::from_secs(5));
    cache.load().await.expect("load");
    let rules = TokenRules {
        issuer: ISS.into(),
        audiences: vec![AUD.into()],
        leeway_secs: 5,
        admins_need_second_factor: false,
    };
    let auth = Verifier::new(cache.clone(), rules);
    let mut header = good_header();
    header["kid"] = json!("old");
    let token = raw_token(&header, &good_claims(), old.encoding_key());
    // Twice: the second answer comes from the verified-token memory.
    auth.verify(&token).await.expect("valid");
    auth.verify(&token).await.expect("still valid");
    // The old key is withdrawn (say, compromised): the remembered token goes too.
    write(&new);
    cache.load().await.expect("reload");
    assert!(matches!(
        auth.verify(&token).await,
        Err(TokenError::Invalid(_))
    ));
}

/// With ADMINS_NEED_SECOND_FACTOR, an admin's token from a password-only
/// sign-in acts as a plain user's; one whose `amr` has `mfa` as an admin's.
#[tokio::test]
async fn admins_act_as_admins_only_after_a_second_factor_when_required() {
    let key = SigningKey::generate("k1").expect("key");
    let jwks = jwks_of(std::slice::from_ref(&key)).expect("jwks");
    let cache = KeyCache::new(Some(JwksSource::Static(jwks)), Duration::from_secs(5));
    cache.load().await.expect("load");
    let rules = |required| TokenRules {
        issuer: ISS.into(),
        audiences: vec![AUD.into()],
        leeway_secs: 5,
        admins_need_second_factor: required,
    };
    let user = uuid::Uuid::now_v7().to_string();
    let token = |amr: &[&str]| {
        let mut claims = good_claims();
        claims["sub"] = json!(user);
        claims["amr"] = json!(amr);
        raw_token(&good_header(), &claims, key.encoding_key())
    };
    let strict = Verifier::new(cache.clone(), rules(true));
    let lenient = Verifier::new(cache, rules(false));
    let password_only = token(&["pwd"]);
    let with_factor = token(&["pwd", "otp", "mfa"]);
    let caller = |v: &Verifier, t: &str| {
        let v = v.clone();
        let t = t.to_owned();
        async move { v.caller(&t).await.expect("a caller") }
    };
    assert!(!caller(&strict, &password_only).await.is_admin());
    assert!(
        caller(&strict, &password_only).await.user_id().is_some(),
        "still the user"
    );
    assert!(caller(&strict, &with_factor).await.is_admin());
    assert!(caller(&lenient, &password_only).await.is_admin());
}
