//! The provider's steps as a browser and a relying party take them, over
//! the RPCs the gateway calls: shared by the provider's tests.

use crate::helpers::{PASSWORD, Suite};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{DecodingKey, Validation};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use suite_proto::auth::{
    AuthorizationParameters, AuthorizeRequest, ClientAuthentication, ConsentRequest,
    GetJwksRequest, IntrospectRequest, Introspection, SignInPage, SignInRequest, TokenRequest,
    Tokens, authorization_step::Step, introspect_response, token_response,
};

pub const REDIRECT: &str = "https://app.example.com/callback";
pub const BINDING: &str = "binding-cookie-of-this-browser";
pub const ISSUER: &str = "http://127.0.0.1:8080";

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD
        .encode(uuid::Uuid::now_v7().as_bytes())
        .repeat(2);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub fn params(client_id: &str, challenge: &str) -> AuthorizationParameters {
    AuthorizationParameters {
        client_id: client_id.into(),
        redirect_uri: REDIRECT.into(),
        response_type: "code".into(),
        scope: "openid profile email offline_access".into(),
        state: "st4te".into(),
        nonce: "n0nce".into(),
        code_challenge: challenge.into(),
        code_challenge_method: "S256".into(),
        ..AuthorizationParameters::default()
    }
}

/// What Authorize answers: the step, and a cookie to set if any.
pub async fn authorize(s: &Suite, p: AuthorizationParameters, session: &str) -> (Step, String) {
    let r = s
        .oauth()
        .authorize(AuthorizeRequest {
            parameters: Some(p),
            browser_session: session.into(),
            browser_binding: BINDING.into(),
        })
        .await
        .expect("authorize")
        .into_inner()
        .step
        .expect("step");
    (
        r.step.expect("a step"),
        r.set_session.map(|c| c.value).unwrap_or_default(),
    )
}

/// The query parameters of a redirect.
pub fn query(uri: &str) -> HashMap<String, String> {
    url::Url::parse(uri)
        .expect("absolute")
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn redirect_of(step: Step) -> HashMap<String, String> {
    match step {
        Step::RedirectUri(uri) => {
            assert!(uri.starts_with(REDIRECT), "{uri}");
            query(&uri)
        }
        other => panic!("expected a redirect, got {other:?}"),
    }
}

pub async fn sign_in(
    s: &Suite,
    request_id: &str,
    csrf: &str,
    binding: &str,
    login: &str,
) -> (Step, String) {
    let r = s
        .oauth()
        .sign_in(SignInRequest {
            request_id: request_id.into(),
            csrf_token: csrf.into(),
            browser_binding: binding.into(),
            login: login.into(),
            password: PASSWORD.into(),
            user_agent: "tests".into(),
        })
        .await
        .expect("sign in")
        .into_inner()
        .step
        .expect("step");
    (
        r.step.expect("a step"),
        r.set_session.map(|c| c.value).unwrap_or_default(),
    )
}

pub async fn consent(
    s: &Suite,
    request_id: &str,
    csrf: &str,
    binding: &str,
    session: &str,
) -> Step {
    decide_consent(s, request_id, csrf, binding, session, true).await
}

/// [`consent`], allowing or denying.
pub async fn decide_consent(
    s: &Suite,
    request_id: &str,
    csrf: &str,
    binding: &str,
    session: &str,
    allow: bool,
) -> Step {
    s.oauth()
        .consent(ConsentRequest {
            request_id: request_id.into(),
            csrf_token: csrf.into(),
            browser_binding: binding.into(),
            browser_session: session.into(),
            allow,
        })
        .await
        .expect("consent")
        .into_inner()
        .step
        .expect("step")
        .step
        .expect("a step")
}

pub fn auth(client_id: &str, secret: &str) -> Option<ClientAuthentication> {
    Some(ClientAuthentication {
        client_id: client_id.into(),
        client_secret: secret.into(),
        method: if secret.is_empty() {
            "none"
        } else {
            "client_secret_post"
        }
        .into(),
    })
}

/// The oneof `result` of an OAuth answer (of the module `$answer`): what
/// its variant `$given` holds, or the OAuth error code ("nothing" if unset).
macro_rules! given_or_error {
    ($result:expr, $answer:ident :: $given:ident) => {
        match $result {
            Some($answer::Result::$given(given)) => Ok(given),
            Some($answer::Result::Error(e)) => Err(e.error),
            None => Err("nothing".to_owned()),
        }
    };
}
pub(crate) use given_or_error;

/// A token call: the tokens, or the OAuth error code.
pub async fn token(s: &Suite, req: TokenRequest) -> Result<Tokens, String> {
    let answer = s.oauth().token(req).await.expect("token call");
    given_or_error!(answer.into_inner().result, token_response::Tokens)
}

pub async fn exchange(
    s: &Suite,
    client_id: &str,
    secret: &str,
    code: &str,
    verifier: &str,
) -> Result<Tokens, String> {
    token(
        s,
        TokenRequest {
            client: auth(client_id, secret),
            grant_type: "authorization_code".into(),
            code: code.into(),
            redirect_uri: REDIRECT.into(),
            code_verifier: verifier.into(),
            ..TokenRequest::default()
        },
    )
    .await
}

pub async fn refresh(
    s: &Suite,
    client_id: &str,
    secret: &str,
    refresh_token: &str,
) -> Result<Tokens, String> {
    token(
        s,
        TokenRequest {
            client: auth(client_id, secret),
            grant_type: "refresh_token".into(),
            refresh_token: refresh_token.into(),
            ..TokenRequest::default()
        },
    )
    .await
}

/// Authorizes with `p` in a browser without a session: the sign-in page.
pub async fn sign_in_page(s: &Suite, p: AuthorizationParameters) -> SignInPage {
    let (step, _) = authorize(s, p, "").await;
    let Step::SignIn(page) = step else {
        panic!("sign-in page expected: {step:?}")
    };
    page
}

/// Signs `username` in through the pages and allows the client: the code
/// and the browser session cookie.
pub async fn code_via_pages(
    s: &Suite,
    client_id: &str,
    challenge: &str,
    username: &str,
) -> (String, String) {
    code_via_pages_with(s, params(client_id, challenge), username).await
}

/// [`code_via_pages`] with the authorization parameters `p`.
pub async fn code_via_pages_with(
    s: &Suite,
    p: AuthorizationParameters,
    username: &str,
) -> (String, String) {
    let page = sign_in_page(s, p).await;
    let (step, session) = sign_in(s, &page.request_id, &page.csrf_token, BINDING, username).await;
    assert!(!session.is_empty(), "a browser session is set");
    let step = match step {
        Step::Consent(c) => {
            assert_eq!(c.username, username);
            assert!(c.scopes.iter().all(|d| !d.description.is_empty()));
            consent(s, &c.request_id, &c.csrf_token, BINDING, &session).await
        }
        other => other,
    };
    let q = redirect_of(step);
    assert_eq!((q["state"].as_str(), q["iss"].as_str()), ("st4te", ISSUER));
    (q["code"].clone(), session)
}

/// Verifies an ID token against the published JWKS as a relying party
/// would (jsonwebtoken, nothing of ours).
pub async fn verify_id_token(s: &Suite, id_token: &str, client_id: &str) -> serde_json::Value {
    verify_jwt(s, id_token, "JWT", client_id).await
}

/// Verifies a JWT of ours for `client_id` with JOSE type `typ` against the
/// published JWKS (signature, `iss`, `aud`, `exp`); its claims.
pub async fn verify_jwt(s: &Suite, token: &str, typ: &str, client_id: &str) -> serde_json::Value {
    let reply = s
        .client
        .clone()
        .get_jwks(GetJwksRequest {})
        .await
        .expect("jwks")
        .into_inner();
    let jwks = suite_tokens::keys::public_jwks_from_proto(&reply.keys);
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some(typ));
    let jwk = jwks.find(&header.kid.expect("kid")).expect("published");
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[ISSUER]);
    v.set_audience(&[client_id]);
    jsonwebtoken::decode::<serde_json::Value>(token, &DecodingKey::from_jwk(jwk).expect("key"), &v)
        .unwrap_or_else(|e| panic!("the {typ} verifies: {e}"))
        .claims
}

pub async fn introspect(s: &Suite, client_id: &str, secret: &str, t: &str) -> Introspection {
    match s
        .oauth()
        .introspect(IntrospectRequest {
            client: auth(client_id, secret),
            token: t.into(),
            token_type_hint: String::new(),
        })
        .await
        .expect("introspect")
        .into_inner()
        .result
    {
        Some(introspect_response::Result::Introspection(i)) => i,
        other => panic!("{other:?}"),
    }
}
