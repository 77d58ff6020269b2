//! The OpenID Connect provider end to end, as a browser and a relying party
//! see it: a client registered over REST, the code flow with PKCE through
//! the real sign-in and consent pages (cookies, CSRF fields), the token
//! endpoint with Basic credentials, the ID token checked against the
//! published JWKS, userinfo, refresh, client credentials, introspection,
//! revocation, single sign-on, RP-initiated logout, and the attacks that
//! must end on an error page or an OAuth error without a code.

use crate::{
    helpers::{Suite, register_as},
    oidc_browser::{Browser, Page, encode, http},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

pub(crate) const REDIRECT: &str = "https://app.example.com/callback";
const BYE: &str = "https://app.example.com/bye";

/// The issuer: the launcher makes it this run's gateway.
fn issuer(s: &Suite) -> String {
    format!("http://{}", s.gateway)
}
const PASSWORD: &str = "correct horse battery";

pub(crate) fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD
        .encode(uuid::Uuid::now_v7().as_bytes())
        .repeat(2);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub(crate) fn authorize_path(client_id: &str, challenge: &str, redirect: &str) -> String {
    format!(
        "/oauth2/authorize?{}",
        encode(&[
            ("client_id", client_id),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("scope", "openid profile email offline_access"),
            ("state", "st4te"),
            ("nonce", "n0nce"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
    )
}

fn basic(id: &str, secret: &str) -> String {
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

/// Registers a confidential client over REST as an admin: (id, secret).
pub(crate) async fn register_client(s: &Suite, admin: &str) -> (String, String) {
    let r = s
        .request(
            "POST",
            "/api/v1/oauth/clients",
            Some(admin),
            Some(serde_json::json!({
                "name": "Shop <Admin>",
                "type": "CLIENT_TYPE_CONFIDENTIAL",
                "redirectUris": [REDIRECT],
                "postLogoutRedirectUris": [BYE],
                "grantTypes": ["authorization_code", "refresh_token", "client_credentials"],
                "scopes": ["openid", "profile", "email", "offline_access", "user:read"],
            })),
        )
        .await
        .expect("create client");
    assert_eq!(r.status, 201, "{}", r.json);
    let id = r.json["client"]["clientId"]
        .as_str()
        .expect("id")
        .to_owned();
    let secret = r.json["clientSecret"].as_str().expect("secret").to_owned();
    let location = r.headers.get("location").and_then(|v| v.to_str().ok());
    assert_eq!(
        location,
        Some(format!("/api/v1/oauth/clients/{id}").as_str())
    );
    (id, secret)
}

/// Through the pages: the authorize GET, sign-in, consent if asked; the
/// redirect's parameters.
async fn sign_in_and_allow(
    s: &Suite,
    browser: &mut Browser,
    client_id: &str,
    challenge: &str,
    login: &str,
) -> HashMap<String, String> {
    let page = browser
        .get(s, &authorize_path(client_id, challenge, REDIRECT))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Shop &#60;Admin&#62;"), "{}", page.body);
    assert!(
        page.header("content-security-policy")
            .contains("form-action 'self' https://app.example.com;")
    );
    assert!(browser.cookies.contains_key("__Host-suite-binding"));
    let mut page = browser
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
        .await;
    assert!(browser.cookies.contains_key("__Host-suite-session"));
    if page.status == 200 {
        assert!(page.body.contains("asks for access"), "{}", page.body);
        page = browser
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
            .await;
    }
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(page.header("location").starts_with(REDIRECT));
    page.location_query()
}

async fn token(s: &Suite, id: &str, secret: &str, form: &[(&str, &str)]) -> Page {
    http(
        s,
        "POST",
        "/oauth2/token",
        &[("authorization", &basic(id, secret))],
        Some(encode(form)),
    )
    .await
}

/// The logout endpoint with the query `pairs`.
fn logout_path(pairs: &[(&str, &str)]) -> String {
    format!("/oauth2/logout?{}", encode(pairs))
}

/// Posts the sign-in form of `page` from `browser`: ivan with `password`,
/// and `csrf_token` as the form's token.
async fn post_sign_in(
    browser: &mut Browser,
    s: &Suite,
    page: &Page,
    csrf_token: &str,
    password: &str,
) -> Page {
    let request_id = page.field("request_id");
    let form = [
        ("request_id", request_id.as_str()),
        ("csrf_token", csrf_token),
        ("login", "ivan"),
        ("password", password),
    ];
    browser.post(s, "/oauth2/signin", &form).await
}

/// The token endpoint's answer to `code` with its PKCE `verifier`, for the
/// client `id`.
pub(crate) async fn exchange(
    s: &Suite,
    id: &str,
    secret: &str,
    code: &str,
    verifier: &str,
) -> Page {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    token(s, id, secret, &form).await
}

/// The ID token checked as a relying party would: against the JWKS the
/// gateway publishes, with jsonwebtoken alone.
pub(crate) async fn verify_id_token(
    s: &Suite,
    id_token: &str,
    client_id: &str,
) -> serde_json::Value {
    let jwks = http(s, "GET", "/.well-known/jwks.json", &[], None).await;
    assert_eq!(jwks.status, 200);
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&jwks.body).expect("a JWKS");
    let header = jsonwebtoken::decode_header(id_token).expect("header");
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "RS256 by default"
    );
    let jwk = set.find(&header.kid.expect("kid")).expect("published");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_issuer(&[issuer(s)]);
    v.set_audience(&[client_id]);
    jsonwebtoken::decode::<serde_json::Value>(
        id_token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"),
        &v,
    )
    .expect("the ID token verifies")
    .claims
}

async fn introspect(s: &Suite, id: &str, secret: &str, t: &str) -> serde_json::Value {
    let r = http(
        s,
        "POST",
        "/oauth2/introspect",
        &[("authorization", &basic(id, secret))],
        Some(encode(&[("token", t)])),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

async fn the_code_flow_through_the_pages_gives_tokens_a_relying_party_accepts(s: Suite) {
    let admin = s.mint(&uuid::Uuid::now_v7().to_string(), &["admin"]);
    let (client_id, secret) = register_client(&s, &admin).await;
    let user = register_as(&s, "olga", "olga@example.com", PASSWORD).await;
    let user_id = user.json["id"].as_str().expect("id").to_owned();
    // Her address, proven through the mailed link (the API's way).
    let link =
        crate::account_pages::mailed_link(&s, "olga@example.com", "/account/verify-email").await;
    let (_, mailed) = link.split_once("token=").expect("a token in the link");
    let confirmed = http(
        &s,
        "POST",
        "/api/v1/email:confirm",
        &[("content-type", "application/json")],
        Some(serde_json::json!({ "token": mailed }).to_string()),
    )
    .await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.body);

    // Discovery names the endpoints under the issuer.
    let d = http(&s, "GET", "/.well-known/openid-configuration", &[], None)
        .await
        .json();
    let issuer = issuer(&s);
    assert_eq!(d["issuer"], issuer.as_str());
    assert_eq!(d["token_endpoint"], format!("{issuer}/oauth2/token"));

    let mut browser = Browser::default();
    let (verifier, challenge) = pkce();
    let q = sign_in_and_allow(&s, &mut browser, &client_id, &challenge, "olga").await;
    assert_eq!(q["state"], "st4te");
    assert_eq!(q["iss"], issuer);
    let code = q["code"].clone();

    let t = exchange(&s, &client_id, &secret, &code, &verifier).await;
    assert_eq!(t.status, 200, "{}", t.body);
    assert_eq!(t.header("cache-control"), "no-store");
    let t = t.json();
    let id = verify_id_token(&s, t["id_token"].as_str().expect("id token"), &client_id).await;
    assert_eq!(id["sub"], user_id.as_str());
    assert_eq!(id["nonce"], "n0nce");
    assert_eq!(id["email"], "olga@example.com");
    assert_eq!(id["email_verified"], true, "the claim tells the truth");
    let access = t["access_token"].as_str().expect("access").to_owned();
    let refresh = t["refresh_token"].as_str().expect("refresh").to_owned();

    // Refresh (rotation): new tokens.
    let r = token(
        &s,
        &client_id,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = r.json();
    let access = r["access_token"].as_str().map_or(access, str::to_owned);
    let refresh = r["refresh_token"].as_str().map_or(refresh, str::to_owned);

    let info = http(
        &s,
        "GET",
        "/oauth2/userinfo",
        &[("authorization", &format!("Bearer {access}"))],
        None,
    )
    .await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["sub"], user_id.as_str());
    assert_eq!(info.json()["preferred_username"], "olga");

    // Single sign-on: the same browser is not asked again.
    let (_, challenge2) = pkce();
    let page = browser
        .get(&s, &authorize_path(&client_id, &challenge2, REDIRECT))
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(page.location_query().contains_key("code"));

    // Introspection, then revocation.
    assert_eq!(
        introspect(&s, &client_id, &secret, &access).await["active"],
        true
    );
    let revoked = http(
        &s,
        "POST",
        "/oauth2/revoke",
        &[("authorization", &basic(&client_id, &secret))],
        Some(encode(&[("token", &access)])),
    )
    .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(
        introspect(&s, &client_id, &secret, &access).await,
        serde_json::json!({ "active": false })
    );

    // The code again: refused, and what its first exchange gave is revoked.
    let again = exchange(&s, &client_id, &secret, &code, &verifier).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert_eq!(again.json()["error"], "invalid_grant");
    let dead = token(
        &s,
        &client_id,
        &secret,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(dead.status, 400, "{}", dead.body);

    // RP-initiated logout: confirmed or not, the session ends and the
    // browser lands on the registered URI.
    let mut page = browser
        .get(
            &s,
            &logout_path(&[
                ("id_token_hint", t["id_token"].as_str().expect("id token")),
                ("post_logout_redirect_uri", BYE),
                ("state", "z"),
            ]),
        )
        .await;
    if page.status == 200 {
        page = browser
            .post(
                &s,
                "/oauth2/logout",
                &[
                    ("csrf_token", &page.field("csrf_token")),
                    ("confirmed", "true"),
                    ("id_token_hint", &page.field("id_token_hint")),
                    ("client_id", &page.field("client_id")),
                    (
                        "post_logout_redirect_uri",
                        &page.field("post_logout_redirect_uri"),
                    ),
                    ("state", &page.field("state")),
                ],
            )
            .await;
    }
    assert_eq!(page.status, 302, "{}", page.body);
    assert_eq!(page.header("location"), format!("{BYE}?state=z"));
    assert!(!browser.cookies.contains_key("__Host-suite-session"));
    // Signed out: the next authorize shows the sign-in page again.
    let page = browser
        .get(&s, &authorize_path(&client_id, &challenge2, REDIRECT))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(r#"name="password""#));
    s.stop().await;
}

async fn client_credentials_and_the_attacks_end_without_a_code(s: Suite) {
    let admin = s.mint(&uuid::Uuid::now_v7().to_string(), &["admin"]);
    let (client_id, secret) = register_client(&s, &admin).await;
    register_as(&s, "ivan", "ivan@example.com", PASSWORD).await;

    let t = http(
        &s,
        "POST",
        "/oauth2/token",
        &[],
        Some(encode(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", "user:read"),
        ])),
    )
    .await;
    assert_eq!(t.status, 200, "{}", t.body);
    let access = t.json()["access_token"].as_str().expect("token").to_owned();
    let i = introspect(&s, &client_id, &secret, &access).await;
    assert_eq!(
        (i["active"].as_bool(), i["sub"].as_str()),
        (Some(true), Some(client_id.as_str()))
    );

    // A wrong secret over Basic: 401 with the Basic challenge.
    let wrong = token(
        &s,
        &client_id,
        "not-it",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("www-authenticate").starts_with("Basic"));

    // A redirect URI that differs by a character: an error page, no redirect.
    let (_, challenge) = pkce();
    let mut browser = Browser::default();
    let page = browser
        .get(
            &s,
            &authorize_path(&client_id, &challenge, &format!("{REDIRECT}x")),
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.headers.get("location").is_none());
    assert!(!page.body.contains("href=\"https://app.example.com"));

    // response_type=token: refused (by redirect to the registered URI with
    // an error, never with a token).
    let path = authorize_path(&client_id, &challenge, REDIRECT)
        .replace("response_type=code", "response_type=token");
    let page = browser.get(&s, &path).await;
    if page.status == 302 {
        let q = page.location_query();
        assert!(
            q.contains_key("error") && !q.contains_key("code") && !q.contains_key("access_token")
        );
    } else {
        assert_eq!(page.status, 400, "{}", page.body);
    }

    // CSRF on sign-in: a forged token signs nobody in.
    let page = browser
        .get(&s, &authorize_path(&client_id, &challenge, REDIRECT))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let forged = post_sign_in(&mut browser, &s, &page, "forged", PASSWORD).await;
    assert_ne!(forged.status, 302, "{}", forged.body);
    assert!(!browser.cookies.contains_key("__Host-suite-session"));
    // Another browser (no binding) posting the right fields: refused too.
    let mut other = Browser::default();
    let stolen = post_sign_in(&mut other, &s, &page, &page.field("csrf_token"), PASSWORD).await;
    assert_ne!(stolen.status, 302, "{}", stolen.body);
    assert!(!other.cookies.contains_key("__Host-suite-session"));

    // A wrong password: the sign-in page again, the error tied to a field
    // or the form.
    let wrong = post_sign_in(
        &mut browser,
        &s,
        &page,
        &page.field("csrf_token"),
        "not the password",
    )
    .await;
    assert!(matches!(wrong.status, 200 | 429), "{}", wrong.body);
    assert!(wrong.body.contains(r#"class="error""#), "{}", wrong.body);

    // An open redirect through post_logout_redirect_uri: never followed.
    let page = browser
        .get(
            &s,
            &logout_path(&[
                ("client_id", &client_id),
                ("post_logout_redirect_uri", "https://attacker.example/"),
            ]),
        )
        .await;
    assert!(
        !page
            .header("location")
            .starts_with("https://attacker.example"),
        "{}",
        page.header("location")
    );
    s.stop().await;
}

/// A code for `client_id` from a browser already signed in (and, for a
/// client it has allowed, not asked again): the redirect's parameters.
async fn code_again(
    s: &Suite,
    browser: &mut Browser,
    client_id: &str,
    challenge: &str,
) -> HashMap<String, String> {
    let page = browser
        .get(s, &authorize_path(client_id, challenge, REDIRECT))
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
    page.location_query()
}

async fn pkce_foreign_codes_forged_consent_and_foreign_hints_are_refused(s: Suite) {
    let admin = s.mint(&uuid::Uuid::now_v7().to_string(), &["admin"]);
    let (a_id, a_secret) = register_client(&s, &admin).await;
    let (b_id, b_secret) = register_client(&s, &admin).await;
    register_as(&s, "vera", "vera@example.com", PASSWORD).await;
    let mut browser = Browser::default();

    // PKCE missing or `plain`: no sign-in, no code.
    for strip in ["missing", "plain"] {
        let (_, challenge) = pkce();
        let mut path = authorize_path(&a_id, &challenge, REDIRECT);
        path = if strip == "missing" {
            path.replace(&format!("&code_challenge={challenge}"), "")
                .replace("&code_challenge_method=S256", "")
        } else {
            path.replace("code_challenge_method=S256", "code_challenge_method=plain")
        };
        let page = browser.get(&s, &path).await;
        match page.status {
            302 => {
                let q = page.location_query();
                assert!(
                    q.contains_key("error") && !q.contains_key("code"),
                    "{strip}: {q:?}"
                );
            }
            status => assert_eq!(status, 400, "{strip}: {}", page.body),
        }
    }

    // A wrong verifier: invalid_grant.
    let (_, challenge) = pkce();
    let q = sign_in_and_allow(&s, &mut browser, &a_id, &challenge, "vera").await;
    let wrong = exchange(&s, &a_id, &a_secret, &q["code"], &pkce().0).await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert_eq!(wrong.json()["error"], "invalid_grant");

    // A's code exchanged by B: invalid_grant.
    let (verifier, challenge) = pkce();
    let q = code_again(&s, &mut browser, &a_id, &challenge).await;
    let foreign = exchange(&s, &b_id, &b_secret, &q["code"], &verifier).await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    assert_eq!(foreign.json()["error"], "invalid_grant");

    // CSRF on consent: B's consent page, a forged token, no code.
    let (_, challenge) = pkce();
    let page = browser
        .get(&s, &authorize_path(&b_id, &challenge, REDIRECT))
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("asks for access"), "{}", page.body);
    let forged = browser
        .post(
            &s,
            "/oauth2/consent",
            &[
                ("request_id", &page.field("request_id")),
                ("csrf_token", "forged"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert!(
        !forged.location_query().contains_key("code"),
        "{}",
        forged.header("location")
    );

    // An ID token of A's as the hint for B's logout: refused, no redirect.
    let (verifier, challenge) = pkce();
    let q = code_again(&s, &mut browser, &a_id, &challenge).await;
    let t = exchange(&s, &a_id, &a_secret, &q["code"], &verifier).await;
    assert_eq!(t.status, 200, "{}", t.body);
    let hint = t.json()["id_token"].as_str().expect("id token").to_owned();
    let page = browser
        .get(
            &s,
            &logout_path(&[
                ("id_token_hint", hint.as_str()),
                ("client_id", &b_id),
                ("post_logout_redirect_uri", BYE),
            ]),
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.headers.get("location").is_none());
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    the_code_flow_through_the_pages_gives_tokens_a_relying_party_accepts,
    client_credentials_and_the_attacks_end_without_a_code,
    pkce_foreign_codes_forged_consent_and_foreign_hints_are_refused,
);
