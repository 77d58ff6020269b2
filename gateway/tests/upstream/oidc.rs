//! The OAuth endpoints and pages against a scripted OAuthService: what the
//! gateway itself owes (the RFC shapes of answers and errors, client
//! authentication from Basic or the form, cookies and their attributes,
//! the pages' headers and escaping, CORS, the discovery cache, an
//! unavailable service). What the provider decides is tested against the
//! real auth service in the root package (`tests/suite/oidc.rs`).

use super::{SocketAddr, TcpListener};
use crate::oidc_provider::{EVIL, Provider};
use suite_proto::auth::o_auth_service_server::OAuthServiceServer;

struct Gw {
    addr: SocketAddr,
    provider: Provider,
}

/// The gateway in front of the scripted provider (or, with `None`, of a
/// port where nothing listens).
async fn gateway(provider: Option<Provider>) -> Gw {
    gateway_with(provider, |_| {}).await
}

/// [`gateway`] with its configuration tweaked.
async fn gateway_with(
    provider: Option<Provider>,
    tweak: impl FnOnce(&mut suite_gateway::Config),
) -> Gw {
    let mut config = suite_testkit::hermetic::<suite_gateway::Config>();
    config.user_service_url = "http://127.0.0.1:9".into();
    config.auth_service_url = "http://127.0.0.1:9".into();
    config.keys.jwks = Some(r#"{"keys":[]}"#.parse().expect("jwks"));
    config.branding.branding_primary_color = "#123abc".into();
    tweak(&mut config);
    let seen = provider.clone().unwrap_or_default();
    if let Some(provider) = provider {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        config.auth_service_url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(OAuthServiceServer::new(provider))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await;
        });
    }
    Gw {
        addr: super::serve_gateway(&config).await,
        provider: seen,
    }
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

impl Gw {
    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let request = req
            .body(suite_testkit::http::body(body.to_owned()))
            .expect("request");
        let answer = suite_testkit::http::send(self.addr, request).await;
        Answer {
            status: answer.status,
            body: answer.text(),
            headers: answer.headers,
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.send("GET", path, headers, "").await
    }

    async fn form(&self, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.send("POST", path, &all, body).await
    }
}

/// A page answered with `status`, with the headers every page carries.
fn assert_page(a: &Answer, status: u16) {
    assert_eq!(a.status, status, "{}", a.body);
    assert_page_headers(a);
}

/// The headers every page carries.
fn assert_page_headers(a: &Answer) {
    assert_eq!(a.header("x-frame-options"), "DENY");
    assert_eq!(a.header("cache-control"), "no-store");
    assert_eq!(a.header("referrer-policy"), "no-referrer");
    let csp = a.header("content-security-policy");
    for directive in [
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("script-src"), "{csp}");
    assert!(a.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn discovery_names_the_endpoints_under_the_issuer_and_is_fetched_once() {
    let gw = gateway(Some(Provider::default())).await;
    for _ in 0..2 {
        let a = gw.get("/.well-known/openid-configuration", &[]).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.header("access-control-allow-origin"), "*");
        let d = a.json();
        assert_eq!(d["issuer"], "https://id.example");
        assert_eq!(d["token_endpoint"], "https://id.example/oauth2/token");
        assert_eq!(d["jwks_uri"], "https://id.example/.well-known/jwks.json");
        assert_eq!(
            d["end_session_endpoint"],
            "https://id.example/oauth2/logout"
        );
        assert_eq!(
            d["device_authorization_endpoint"],
            "https://id.example/oauth2/device_authorization"
        );
        assert_eq!(
            d["code_challenge_methods_supported"],
            serde_json::json!(["S256"])
        );
        assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
        assert_eq!(d["authorization_response_iss_parameter_supported"], true);
        assert_eq!(d["id_token_signing_alg_values_supported"][0], "RS256");
        assert_eq!(d["backchannel_logout_supported"], true);
        assert_eq!(d["backchannel_logout_session_supported"], true);
        assert!(d.get("registration_endpoint").is_none(), "off by default");
    }
    assert_eq!(gw.provider.seen().configuration_calls, 1);
}

#[tokio::test]
async fn the_token_endpoint_reads_basic_credentials_form_urldecoded_and_answers_uncached() {
    let gw = gateway(Some(Provider::default())).await;
    // RFC 6749 §2.3.1: id and secret form-urlencoded, then base64.
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode("my%3Aapp:s3cr%3At%2B%25");
    let auth = format!("Basic {basic}");
    let a = gw
        .form(
            "/oauth2/token",
            &[("authorization", &auth)],
            "grant_type=authorization_code&code=c&code_verifier=v&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("cache-control"), "no-store");
    assert_eq!(a.header("pragma"), "no-cache");
    assert_eq!(a.header("access-control-allow-origin"), "*");
    let t = a.json();
    assert_eq!(t["access_token"], "at");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["id_token"], "idt");
    assert!(t.get("refresh_token").is_none());
    let client = gw.provider.seen().clients.last().cloned().expect("a call");
    assert_eq!(client.client_id, "my:app");
    assert_eq!(client.client_secret, "s3cr:t+%");
    assert_eq!(client.method, "client_secret_basic");

    // A wrong secret over Basic: 401 with the Basic challenge.
    let wrong = base64::engine::general_purpose::STANDARD.encode("app:nope");
    let a = gw
        .form(
            "/oauth2/token",
            &[("authorization", &format!("Basic {wrong}"))],
            "grant_type=client_credentials",
        )
        .await;
    assert_eq!(a.status, 401);
    assert!(
        a.header("www-authenticate").starts_with("Basic"),
        "{:?}",
        a.headers
    );
    assert_eq!(a.json()["error"], "invalid_client");

    // The same over the form: 401 without a challenge.
    let a = gw
        .form(
            "/oauth2/token",
            &[],
            "grant_type=client_credentials&client_id=app&client_secret=nope",
        )
        .await;
    assert_eq!(a.status, 401);
    assert!(a.headers.get("www-authenticate").is_none());

    let calls = gw.provider.seen().clients.len();
    // Refused here, before any call: two methods at once, a repeated
    // parameter, no grant type, not a form.
    for (headers, body) in [
        (
            vec![("authorization", auth.as_str())],
            "grant_type=client_credentials&client_secret=x",
        ),
        (
            vec![],
            "grant_type=client_credentials&grant_type=password&client_id=app",
        ),
        (vec![], "client_id=app"),
    ] {
        let a = gw.form("/oauth2/token", &headers, body).await;
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        assert_eq!(a.json()["error"], "invalid_request", "{body}");
        assert_eq!(a.header("cache-control"), "no-store");
    }
    let a = gw
        .send(
            "POST",
            "/oauth2/token",
            &[("content-type", "application/json")],
            r#"{"grant_type":"client_credentials"}"#,
        )
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"], "invalid_request");
    let a = gw
        .form("/oauth2/token", &[], "grant_type=client_credentials")
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["error"], "invalid_client");
    assert_eq!(gw.provider.seen().clients.len(), calls);
}

#[tokio::test]
async fn userinfo_errors_are_bearer_challenges() {
    let gw = gateway(Some(Provider::default())).await;
    let a = gw.get("/oauth2/userinfo", &[]).await;
    assert_eq!(a.status, 401);
    assert_eq!(a.header("www-authenticate"), "Bearer");
    let a = gw
        .get("/oauth2/userinfo", &[("authorization", "Bearer stale")])
        .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.header("www-authenticate"),
        "Bearer error=\"invalid_token\", error_description=\"the token expired\""
    );
    let a = gw
        .get("/oauth2/userinfo", &[("authorization", "Bearer good")])
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json(),
        serde_json::json!({ "sub": "u1", "preferred_username": "ada" })
    );
    // POST with the token in the form (RFC 6750 §2.2), not in both places.
    let a = gw.form("/oauth2/userinfo", &[], "access_token=good").await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = gw
        .form(
            "/oauth2/userinfo",
            &[("authorization", "Bearer good")],
            "access_token=good",
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(a.header("www-authenticate").contains("invalid_request"));
}

#[tokio::test]
async fn introspection_of_an_inactive_token_says_only_that_and_revocation_is_200() {
    let gw = gateway(Some(Provider::default())).await;
    let a = gw
        .form(
            "/oauth2/introspect",
            &[],
            "token=dead&client_id=rs&client_secret=x",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json(), serde_json::json!({ "active": false }));
    let a = gw
        .form(
            "/oauth2/introspect",
            &[],
            "token=live&client_id=rs&client_secret=x",
        )
        .await;
    assert_eq!(
        a.json(),
        serde_json::json!({ "active": true, "scope": "openid", "aud": "suite", "exp": 2_000_000_000 })
    );
    assert!(a.headers.get("access-control-allow-origin").is_none());
    let a = gw
        .form("/oauth2/revoke", &[], "token=any&client_id=rs")
        .await;
    assert_eq!(a.status, 200);
    let a = gw.form("/oauth2/revoke", &[], "client_id=rs").await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"], "invalid_request");
}

#[tokio::test]
async fn the_sign_in_page_binds_the_browser_escapes_and_allows_forms_only_to_the_redirect() {
    let gw = gateway(Some(Provider::default())).await;
    let a = gw
        .get("/oauth2/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code", &[])
        .await;
    assert_page(&a, 200);
    assert!(
        a.header("content-security-policy")
            .contains("form-action 'self' https://app.example;"),
        "{}",
        a.header("content-security-policy")
    );
    assert_eq!(a.header("content-type"), "text/html; charset=utf-8");
    let cookie = a.header("set-cookie").to_owned();
    assert!(cookie.starts_with("__Host-suite-binding="), "{cookie}");
    for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let binding = cookie
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("a value");
    assert_eq!(gw.provider.seen().bindings.last(), Some(&binding));
    // Escaped, never markup; the hidden fields and accessible labels.
    assert!(!a.body.contains(EVIL), "{}", a.body);
    assert!(a.body.contains("&#60;script&#62;"), "{}", a.body);
    assert!(a.body.contains(r#"<html lang="en">"#));
    assert!(a.body.contains(r#"name="request_id" value="req-1""#));
    assert!(a.body.contains(r#"name="csrf_token" value="csrf-1""#));
    assert!(
        a.body.contains(r#"<label for="login">"#) && a.body.contains(r#"<label for="password">"#)
    );
    assert!(!a.body.contains("<script"));
    // No sign-up link unless configured.
    assert!(!a.body.contains("Create one"));

    // The same browser again: its binding is sent on, none is set anew.
    let cookie_header = format!("__Host-suite-binding={binding}; __Host-suite-session=sso-0");
    let a = gw
        .get(
            "/oauth2/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
            &[("cookie", &cookie_header)],
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.headers.get("set-cookie").is_none());
    assert_eq!(
        gw.provider.seen().sessions.last().map(String::as_str),
        Some("sso-0")
    );

    // A wrong password: the error tied to its field, the login kept.
    let a = gw
        .form(
            "/oauth2/signin",
            &[("cookie", &cookie_header)],
            "request_id=req-1&csrf_token=csrf-1&redirect_origin=https%3A%2F%2Fapp.example&login=ada%22%3E&password=wrong",
        )
        .await;
    assert_page(&a, 200);
    assert!(
        a.body.contains(r#"aria-describedby="password-error""#),
        "{}",
        a.body
    );
    assert!(a.body.contains(r#"id="password-error""#));
    assert!(a.body.contains("Wrong login or password."));
    assert!(a.body.contains(r#"value="ada&#34;&#62;""#), "{}", a.body);
    assert_eq!(gw.provider.seen().bindings.last(), Some(&binding));

    // Locked: 429 with the wait shown and in Retry-After.
    let a = gw
        .form(
            "/oauth2/signin",
            &[("cookie", &cookie_header)],
            "request_id=req-1&csrf_token=csrf-1&login=ada&password=locked",
        )
        .await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), "30");
    assert!(a.body.contains("30 seconds"), "{}", a.body);

    // The right one: 302 to the client, the SSO session set.
    let a = gw
        .form(
            "/oauth2/signin",
            &[("cookie", &cookie_header)],
            "request_id=req-1&csrf_token=csrf-1&login=ada&password=right",
        )
        .await;
    assert_eq!(a.status, 302, "{}", a.body);
    assert!(
        a.header("location")
            .starts_with("https://app.example/cb?code=c0de")
    );
    let session = a.header("set-cookie");
    assert!(
        session.starts_with(
            "__Host-suite-session=sso-1; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=3600"
        ),
        "{session}"
    );
    assert_eq!(a.header("cache-control"), "no-store");
}

#[tokio::test]
async fn the_device_endpoint_answers_rfc_8628_json_and_its_page_takes_the_code_with_csrf() {
    let gw = gateway(Some(Provider::default())).await;
    let a = gw
        .form(
            "/oauth2/device_authorization",
            &[],
            "client_id=tv&scope=openid",
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("cache-control"), "no-store");
    let d = a.json();
    assert_eq!(d["device_code"], "dev-code");
    assert_eq!(d["user_code"], "BCDF-GHJK");
    assert_eq!(d["verification_uri"], "https://id.example/oauth2/device");
    assert_eq!(
        d["verification_uri_complete"],
        "https://id.example/oauth2/device?user_code=BCDF-GHJK"
    );
    assert_eq!(
        (d["expires_in"].as_i64(), d["interval"].as_i64()),
        (Some(600), Some(5))
    );
    let a = gw
        .form("/oauth2/device_authorization", &[], "client_id=web")
        .await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"], "unauthorized_client");

    // The page, pre-filled from verification_uri_complete, never submitted
    // for the user; a binding set, the form's token derived from it.
    let a = gw.get("/oauth2/device?user_code=BCDF-GHJK", &[]).await;
    assert_page(&a, 200);
    assert!(a.body.contains(r#"value="BCDF-GHJK""#), "{}", a.body);
    assert!(a.body.contains(r#"<label for="user_code">"#));
    assert!(!a.body.contains("<script"));
    let cookie = a.header("set-cookie").to_owned();
    let binding = cookie
        .split(';')
        .next()
        .and_then(|c| c.strip_prefix("__Host-suite-binding="))
        .expect("a binding")
        .to_owned();
    let csrf = a
        .body
        .split(r#"name="csrf_token" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF token")
        .to_owned();
    assert_eq!(csrf.len(), 43);
    let cookies = format!("__Host-suite-binding={binding}; __Host-suite-session=sso-0");

    // Posted from elsewhere (no token, or another's): asked again, nothing called.
    let calls = gw.provider.seen().bindings.len();
    for body in [
        "user_code=bcdfghjk".to_owned(),
        format!("user_code=bcdfghjk&csrf_token={}", "x".repeat(43)),
    ] {
        let a = gw
            .form("/oauth2/device", &[("cookie", &cookies)], &body)
            .await;
        assert_eq!(a.status, 400, "{}", a.body);
        assert!(a.body.contains("This form expired"), "{}", a.body);
    }
    assert_eq!(gw.provider.seen().bindings.len(), calls);

    // The right token: the consent page, showing the code to compare.
    let a = gw
        .form(
            "/oauth2/device",
            &[("cookie", &cookies)],
            &format!("user_code=bcdfghjk&csrf_token={csrf}"),
        )
        .await;
    assert_page(&a, 200);
    assert!(a.body.contains("BCDF-GHJK"), "{}", a.body);
    assert!(!a.body.contains(EVIL));
    assert!(a.body.contains(r#"action="/oauth2/consent""#));
    assert_eq!(gw.provider.seen().bindings.last(), Some(&binding));
    assert_eq!(
        gw.provider.seen().sessions.last().map(String::as_str),
        Some("sso-0")
    );
    // An unknown code: the form again with the service's words.
    let a = gw
        .form(
            "/oauth2/device",
            &[("cookie", &cookies)],
            &format!("user_code=zzzz&csrf_token={csrf}"),
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.body);
    assert!(a.body.contains("That code is unknown."), "{}", a.body);
    assert!(a.body.contains(r#"value="zzzz""#));
}

#[tokio::test]
async fn registration_is_404_when_off_and_rfc_7591_json_when_on() {
    let gw = gateway(Some(Provider::default())).await;
    let body = r#"{"redirect_uris":["https://app.example/cb"],"client_name":"App"}"#;
    let json = [("content-type", "application/json")];
    let a = gw.send("POST", "/oauth2/register", &json, body).await;
    assert_eq!(a.status, 404, "{}", a.body);
    assert!(a.body.contains("registration is off"), "{}", a.body);

    let provider = Provider::default();
    provider.seen().registration_enabled = true;
    let gw = gateway(Some(provider)).await;
    let d = gw
        .get("/.well-known/openid-configuration", &[])
        .await
        .json();
    assert_eq!(
        d["registration_endpoint"],
        "https://id.example/oauth2/register"
    );
    let a = gw.send("POST", "/oauth2/register", &json, body).await;
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(a.header("cache-control"), "no-store");
    let c = a.json();
    assert_eq!(c["client_id"], "new-client");
    assert_eq!(c["client_secret"], "s3cret");
    assert_eq!(c["client_secret_expires_at"], 0);
    assert_eq!(c["client_id_issued_at"], 1_700_000_000);
    assert_eq!(c["client_name"], "App");
    assert_eq!(
        c["redirect_uris"],
        serde_json::json!(["https://app.example/cb"])
    );
    assert_eq!(c["token_endpoint_auth_method"], "client_secret_basic");
    // Unknown members ignored (RFC 7591 §2); what is known, sent on.
    let a = gw
        .send(
            "POST",
            "/oauth2/register",
            &json,
            r#"{"redirect_uris":["https://app.example/cb"],"logo_uri":"https://x/l.png","scope":"openid profile","grant_types":["authorization_code","refresh_token"],"post_logout_redirect_uris":["https://app.example/bye"],"backchannel_logout_uri":"https://app.example/bc","token_endpoint_auth_method":"none","response_types":["code"]}"#,
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let sent = gw
        .provider
        .seen()
        .registrations
        .last()
        .cloned()
        .expect("sent");
    assert_eq!(sent.scope, "openid profile");
    assert_eq!(sent.grant_types, ["authorization_code", "refresh_token"]);
    assert_eq!(sent.post_logout_redirect_uris, ["https://app.example/bye"]);
    assert_eq!(sent.backchannel_logout_uri, "https://app.example/bc");
    assert_eq!(sent.token_endpoint_auth_method, "none");
    // The service's refusal, and malformed metadata, in RFC 7591 §3.2.2's shape.
    let calls = gw.provider.seen().registrations.len();
    for (body, content_type, error) in [
        (
            r#"{"redirect_uris":["http://evil.example/cb"]}"#,
            "application/json",
            "invalid_redirect_uri",
        ),
        (
            r#"{"redirect_uris":"https://app.example/cb"}"#,
            "application/json",
            "invalid_redirect_uri",
        ),
        (
            r#"{"client_name":7}"#,
            "application/json",
            "invalid_client_metadata",
        ),
        (
            r#"["not an object"]"#,
            "application/json",
            "invalid_client_metadata",
        ),
        ("{not json", "application/json", "invalid_client_metadata"),
        (
            r#"{"redirect_uris":[]}"#,
            "application/x-www-form-urlencoded",
            "invalid_client_metadata",
        ),
    ] {
        let a = gw
            .send(
                "POST",
                "/oauth2/register",
                &[("content-type", content_type)],
                body,
            )
            .await;
        assert_eq!(a.status, 400, "{body}: {}", a.body);
        assert_eq!(a.json()["error"], error, "{body}");
    }
    assert_eq!(
        gw.provider.seen().registrations.len(),
        calls + 1,
        "only well-formed metadata reaches the service"
    );
}

#[tokio::test]
async fn the_error_page_escapes_what_it_shows_and_links_nowhere() {
    let gw = gateway(Some(Provider::default())).await;
    let a = gw
        .get("/oauth2/authorize?client_id=evil&redirect_uri=https%3A%2F%2Fattacker.example%2F%3Cscript%3E", &[])
        .await;
    assert_page(&a, 400);
    assert!(
        !a.body.contains(EVIL) && !a.body.contains("<script"),
        "{}",
        a.body
    );
    assert!(!a.body.contains("href=\"https://attacker"), "{}", a.body);
    assert!(!a.header("content-security-policy").contains("attacker"));
    // A repeated parameter's name is echoed escaped, and no call is made.
    let calls = gw.provider.seen().bindings.len();
    let a = gw.get("/oauth2/authorize?%3Cb%3E=1&%3Cb%3E=2", &[]).await;
    assert_eq!(a.status, 400);
    assert!(
        a.body.contains("&#60;b&#62;") && !a.body.contains("<b>"),
        "{}",
        a.body
    );
    assert_eq!(gw.provider.seen().bindings.len(), calls);
}

#[tokio::test]
async fn head_requests_never_start_a_sign_in_or_end_a_session() {
    let gw = gateway(Some(Provider::default())).await;
    let calls = gw.provider.seen().bindings.len();
    for path in [
        "/oauth2/authorize?client_id=app&response_type=code",
        "/oauth2/logout?id_token_hint=x",
    ] {
        let a = gw.send("HEAD", path, &[], "").await;
        assert_eq!(a.status, 405, "{path}");
        assert_eq!(a.header("allow"), "GET, POST", "{path}");
    }
    assert_eq!(gw.provider.seen().bindings.len(), calls);
}

#[tokio::test]
async fn rp_initiated_logout_asks_then_clears_the_session_and_redirects() {
    let gw = gateway(Some(Provider::default())).await;
    let a = gw
        .get("/oauth2/logout?client_id=app&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye&state=z", &[("cookie", "__Host-suite-binding=b1; __Host-suite-session=sso-1")])
        .await;
    assert_page(&a, 200);
    assert!(
        a.header("content-security-policy")
            .contains("form-action 'self' https://app.example;")
    );
    assert!(a.body.contains(r#"name="csrf_token" value="csrf-2""#));
    assert!(
        a.body
            .contains(r#"name="post_logout_redirect_uri" value="https://app.example/bye""#)
    );
    let a = gw
        .form(
            "/oauth2/logout",
            &[("cookie", "__Host-suite-binding=b1; __Host-suite-session=sso-1")],
            "confirmed=true&csrf_token=csrf-2&client_id=app&post_logout_redirect_uri=https%3A%2F%2Fapp.example%2Fbye&state=z",
        )
        .await;
    assert_eq!(a.status, 302);
    assert_eq!(a.header("location"), "https://app.example/bye?state=z");
    assert!(
        a.header("set-cookie")
            .starts_with("__Host-suite-session=; ")
    );
    assert!(a.header("set-cookie").contains("Max-Age=0"));
}

#[tokio::test]
async fn an_unavailable_provider_is_503_with_retry_after_on_endpoints_and_pages() {
    let gw = gateway(None).await;
    let a = gw.get("/.well-known/openid-configuration", &[]).await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert!(!a.header("retry-after").is_empty());
    assert_eq!(a.header("content-type"), "application/problem+json");
    let a = gw.get("/oauth2/authorize?client_id=app", &[]).await;
    assert_page(&a, 503);
    assert!(!a.header("retry-after").is_empty());
    assert!(a.body.contains("try again"), "{}", a.body);
    let a = gw
        .form(
            "/oauth2/token",
            &[],
            "grant_type=client_credentials&client_id=a",
        )
        .await;
    assert_eq!(a.status, 503);
}

#[tokio::test]
async fn spa_endpoints_answer_any_origin_and_the_stylesheet_carries_the_colour() {
    let gw = gateway(Some(Provider::default())).await;
    for path in [
        "/oauth2/token",
        "/oauth2/userinfo",
        "/.well-known/jwks.json",
    ] {
        let a = gw
            .send(
                "OPTIONS",
                path,
                &[
                    ("origin", "https://spa.example"),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "authorization"),
                ],
                "",
            )
            .await;
        assert_eq!(a.status, 204, "{path}");
        assert_eq!(a.header("access-control-allow-origin"), "*", "{path}");
        assert!(a.headers.get("access-control-allow-credentials").is_none());
    }
    let a = gw
        .send(
            "OPTIONS",
            "/oauth2/signin",
            &[
                ("origin", "https://spa.example"),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
    assert!(a.headers.get("access-control-allow-origin").is_none());
    let a = gw.get("/oauth2/assets/suite.css", &[]).await;
    assert_eq!(a.status, 200);
    assert!(a.header("content-type").starts_with("text/css"));
    assert!(
        a.body.starts_with(":root { --suite-primary: #123abc; }"),
        "{}",
        &a.body[..80]
    );
    let a = gw.get("/oauth2/assets/logo", &[]).await;
    assert_eq!(a.status, 404);
}

#[tokio::test]
async fn an_operator_s_logo_and_sign_up_link_appear_on_the_pages() {
    let dir = tempfile_dir();
    let logo = dir.join("logo.svg");
    std::fs::write(&logo, "<svg xmlns='http://www.w3.org/2000/svg'/>").expect("logo");
    let gw = gateway_with(Some(Provider::default()), |c| {
        c.branding.branding_logo_file = Some(logo.clone());
        c.branding.branding_product_name = "Acme <ID>".into();
        c.branding.sign_up_url = Some("https://acme.example/join".into());
    })
    .await;
    let a = gw
        .get(
            "/oauth2/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb",
            &[],
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(
        a.body
            .contains(r#"<img class="logo" src="/oauth2/assets/logo" alt="Acme &#60;ID&#62;">"#),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains(r#"<a href="https://acme.example/join">Create one</a>"#),
        "{}",
        a.body
    );
    let a = gw.get("/oauth2/assets/logo", &[]).await;
    assert_eq!(a.status, 200);
    assert_eq!(a.header("content-type"), "image/svg+xml");
    assert!(
        a.header("content-security-policy")
            .starts_with("default-src 'none'")
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// A fresh directory of this test's own.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("suite-gw-branding-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

/// The browser binding a page's answer set.
fn binding_of(a: &Answer) -> String {
    a.header("set-cookie")
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("a binding cookie")
}

#[tokio::test]
async fn a_second_factor_is_asked_on_a_form_of_its_own_and_posted_with_its_challenge() {
    let gw = gateway(Some(Provider::default())).await;
    // `acr_values` reaches the provider with the other parameters.
    let a = gw
        .get(
            "/oauth2/authorize?client_id=app&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&acr_values=mfa&login_hint=ada&max_age=60",
            &[],
        )
        .await;
    assert_page(&a, 200);
    let p = gw
        .provider
        .seen()
        .parameters
        .last()
        .cloned()
        .expect("authorized");
    assert_eq!(
        (
            p.acr_values.as_str(),
            p.login_hint.as_str(),
            p.max_age.as_str()
        ),
        ("mfa", "ada", "60")
    );
    let binding = binding_of(&a);
    let cookie = format!("__Host-suite-binding={binding}");
    let headers = [("cookie", cookie.as_str()), ("user-agent", "Browser/1.0")];
    let form = "request_id=req-1&csrf_token=csrf-1&redirect_origin=https%3A%2F%2Fapp.example";

    // The right password of an account with a second factor: the code's
    // form, the challenge hidden (escaped), no session yet.
    let a = gw
        .form(
            "/oauth2/signin",
            &headers,
            &format!("{form}&login=ada&password=right-mfa"),
        )
        .await;
    assert_page(&a, 200);
    assert!(
        a.header("content-security-policy")
            .contains("form-action 'self' https://app.example;")
    );
    assert!(a.headers.get("set-cookie").is_none());
    assert!(
        a.body
            .contains(r#"<form method="post" action="/oauth2/signin/factor">"#),
        "{}",
        a.body
    );
    assert!(
        a.body
            .contains(r#"<input type="hidden" name="challenge" value="ch-1 &#60;script&#62;"#),
        "{}",
        a.body
    );
    assert!(!a.body.contains(EVIL));
    assert!(a.body.contains(r#"autocomplete="one-time-code""#));
    assert!(!a.body.contains(r#"name="password""#));
    assert!(!a.body.contains("<script"));

    // A wrong code: said beside the code field, with the next challenge; the
    // request carried the form, the binding and the user agent.
    let a = gw
        .form(
            "/oauth2/signin/factor",
            &headers,
            &format!("{form}&challenge=ch-1&code=000000"),
        )
        .await;
    assert_page(&a, 200);
    assert!(
        a.body.contains(r#"aria-describedby="code-error""#),
        "{}",
        a.body
    );
    assert!(a.body.contains(r#"id="code-error""#));
    assert!(a.body.contains("That code is wrong."));
    assert!(a.body.contains(r#"name="challenge" value="ch-2""#));
    let sent = gw.provider.seen().factors.last().cloned().expect("sent");
    assert_eq!(
        (
            sent.request_id.as_str(),
            sent.csrf_token.as_str(),
            sent.browser_binding.as_str(),
            sent.challenge.as_str(),
            sent.code.as_str(),
            sent.user_agent.as_str(),
        ),
        (
            "req-1",
            "csrf-1",
            binding.as_str(),
            "ch-1",
            "000000",
            "Browser/1.0"
        )
    );

    // Locked: 429 with the wait beside the code field and in Retry-After.
    let a = gw
        .form(
            "/oauth2/signin/factor",
            &headers,
            &format!("{form}&challenge=ch-2&code=locked"),
        )
        .await;
    assert_eq!(a.status, 429);
    assert_eq!(a.header("retry-after"), "45");
    assert!(a.body.contains("Try again in 45 seconds."), "{}", a.body);
    assert!(a.body.contains(r#"id="code-error""#));

    // A spent challenge: the password form again, with the error.
    let a = gw
        .form(
            "/oauth2/signin/factor",
            &headers,
            &format!("{form}&challenge=ch-2&code=expired"),
        )
        .await;
    assert_page(&a, 200);
    assert!(a.body.contains(r#"name="password""#));
    assert!(a.body.contains("That took too long: sign in again."));

    // A recovery code: 302 to the client, the SSO session set.
    let a = gw
        .form(
            "/oauth2/signin/factor",
            &headers,
            &format!("{form}&challenge=ch-2&code=abcd-efgh"),
        )
        .await;
    assert_eq!(a.status, 302, "{}", a.body);
    assert!(
        a.header("location")
            .starts_with("https://app.example/cb?code=c0de")
    );
    assert!(
        a.header("set-cookie")
            .starts_with("__Host-suite-session=sso-1; Path=/; Secure; HttpOnly; SameSite=Lax"),
        "{}",
        a.header("set-cookie")
    );

    // Not a form: the error page, nothing sent.
    let before = gw.provider.seen().factors.len();
    let a = gw
        .send("POST", "/oauth2/signin/factor", &headers, "{}")
        .await;
    assert_page(&a, 400);
    assert_eq!(gw.provider.seen().factors.len(), before);
    let a = gw.get("/oauth2/signin/factor", &[]).await;
    assert_eq!(a.status, 405);
}

#[tokio::test]
async fn codes_are_tried_in_the_strict_bucket_and_passwords_in_the_general_one() {
    let gw = gateway_with(Some(Provider::default()), |c| {
        c.auth_rate_limit_burst = 1;
        c.auth_rate_limit_per_minute = 1;
    })
    .await;
    let form = "request_id=req-1&csrf_token=csrf-1";
    for _ in 0..2 {
        let a = gw
            .form(
                "/oauth2/signin",
                &[],
                &format!("{form}&login=ada&password=right-mfa"),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let a = gw
        .form(
            "/oauth2/signin/factor",
            &[],
            &format!("{form}&challenge=ch-1&code=000000"),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = gw
        .form(
            "/oauth2/signin/factor",
            &[],
            &format!("{form}&challenge=ch-2&code=000000"),
        )
        .await;
    assert_page(&a, 429);
    assert!(!a.header("retry-after").is_empty());
    assert_eq!(gw.provider.seen().factors.len(), 1);
}

/// The account area without a live browser session: to its sign-in (the
/// provider's sign-in page of its account client, tied to this browser),
/// a stale session cookie cleared on the way; its sign-in's end leads back;
/// its forms refused when another site sent them.
#[tokio::test]
async fn the_account_area_sends_a_browser_without_a_session_to_its_sign_in() {
    // Status, no caching, no framing (the policy is the pages' own).
    fn assert_account_page(a: &Answer, status: u16) {
        assert_eq!(a.status, status, "{}", a.body);
        assert_eq!(a.header("cache-control"), "no-store");
        assert_eq!(a.header("x-frame-options"), "DENY");
        assert!(
            a.header("content-security-policy")
                .contains("frame-ancestors 'none'")
        );
    }
    let gw = gateway(Some(Provider::default())).await;
    let a = gw.get("/account", &[]).await;
    assert_account_page(&a, 302);
    assert_eq!(a.header("location"), "/account/signin");
    let a = gw
        .get("/account", &[("cookie", "__Host-suite-session=stale")])
        .await;
    assert_account_page(&a, 302);
    assert_eq!(a.header("location"), "/account/signin");
    let cleared = a.header("set-cookie");
    assert!(
        cleared.starts_with("__Host-suite-session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );

    let a = gw.get("/account/signin", &[]).await;
    assert_account_page(&a, 200);
    assert!(
        a.body.contains("<strong>your account</strong>"),
        "{}",
        a.body
    );
    assert!(a.body.contains(r#"action="/oauth2/signin""#), "{}", a.body);
    let binding = a
        .header("set-cookie")
        .split(';')
        .next()
        .and_then(|c| c.strip_prefix("__Host-suite-binding="))
        .expect("a binding cookie")
        .to_owned();
    assert_eq!(gw.provider.seen().bindings.last(), Some(&binding));
    // Its GET starts a sign-in: a HEAD does not.
    assert_eq!(
        gw.send("HEAD", "/account/signin", &[], "").await.status,
        405
    );

    let a = gw.get("/account/signed-in?code=c&iss=x", &[]).await;
    assert_account_page(&a, 302);
    assert_eq!(a.header("location"), "/account");
    // An error's description is nobody's to put on the page.
    let a = gw
        .get(
            "/account/signed-in?error=server_error&error_description=Call+0800+now",
            &[],
        )
        .await;
    assert_account_page(&a, 400);
    assert!(!a.body.contains("0800"), "{}", a.body);

    let a = gw
        .form(
            "/account/sign-out-everywhere",
            &[("sec-fetch-site", "cross-site")],
            "csrf_token=x",
        )
        .await;
    assert_account_page(&a, 403);
}
