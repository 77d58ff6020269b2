//! Errors as problem details with the right status, and an upstream that
//! is down.

use super::{PASSWORD, register, token};
use crate::helpers::{Suite, login, spawn_suite_with};
use serde_json::json;
use std::time::{Duration, Instant};
use suite_testkit::Backend;

async fn errors_are_problem_details_with_the_right_status(s: Suite) {
    register(&s, "dave").await;
    let problem = |r: &crate::helpers::Reply| {
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json")
        );
        assert!(r.json["requestId"].is_string() && r.headers.contains_key("x-request-id"));
    };
    let bad = s
        .request(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": "x", "email": "nope", "password": "short"})),
        )
        .await
        .expect("bad");
    assert_eq!(bad.status, 400);
    problem(&bad);
    let fields: Vec<&str> = bad.json["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, vec!["username", "email", "password"]);
    let dup = s
        .request(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": "dave", "email": "x@example.com", "password": PASSWORD})),
        )
        .await
        .expect("dup");
    assert_eq!(dup.status, 409);
    problem(&dup);
    let anon = s.get("/api/v1/users/me", None).await.expect("anon");
    assert_eq!(anon.status, 401);
    assert_eq!(
        anon.headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    problem(&anon);
    // Verified at the gateway: a token signed by anyone else never reaches a service.
    let forged = suite_tokens::SigningKey::generate_thumbprinted().expect("key");
    let now = jsonwebtoken_now();
    let fake = forged
        .sign(&suite_tokens::Claims {
            iss: "suite-auth".into(),
            aud: suite_tokens::Audience::One("suite".into()),
            sub: "01a216a6-97ce-7371-9406-736e32aee300".into(),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: "x".into(),
            sid: None,
            roles: vec!["admin".into()],
            client_id: None,
            scope: None,
            amr: Vec::new(),
            auth_time: None,
            pat: false,
        })
        .expect("sign");
    let refused = s.get("/api/v1/users", Some(&fake)).await.expect("forged");
    assert_eq!(refused.status, 401);
    assert_eq!(refused.json["detail"], "invalid access token");
    problem(&refused);
    let wrong = s
        .request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "dave", "password": "not it at all"})),
        )
        .await
        .expect("login");
    assert_eq!(wrong.status, 401);
    let nothing = s.get("/api/v1/nothing-here", None).await.expect("404");
    assert_eq!(nothing.status, 404);
    problem(&nothing);
    let put = s
        .request("PUT", "/api/v1/users/me", None, Some(json!({})))
        .await
        .expect("405");
    assert_eq!(put.status, 405);
    assert_eq!(
        put.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, HEAD, PATCH, DELETE")
    );
    // A custom method's path is its own resource: PATCH on it is 405, not a
    // PATCH of a user whose id ends in ":changePassword".
    let patch = s
        .request(
            "PATCH",
            "/api/v1/users/me:changePassword",
            None,
            Some(json!({})),
        )
        .await
        .expect("405");
    assert_eq!(patch.status, 405, "{}", patch.json);
    assert_eq!(
        patch.headers.get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
    let text = s
        .raw(
            "POST",
            "/api/v1/users",
            None,
            Some(("text/plain", "hi".into())),
        )
        .await
        .expect("415");
    assert_eq!(text.status, 415);
    let broken = s
        .raw(
            "POST",
            "/api/v1/users",
            None,
            Some(("application/json", "{\"username\":".into())),
        )
        .await
        .expect("json");
    assert_eq!(broken.status, 400);
    assert!(
        broken.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("column")),
        "{}",
        broken.json
    );
    let unknown = s
        .request("POST", "/api/v1/users", None, Some(json!({"usernme": "x"})))
        .await
        .expect("unknown");
    assert_eq!(unknown.status, 400);
    assert!(
        unknown.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("usernme"))
    );
    let wrong_type = s
        .request("POST", "/api/v1/users", None, Some(json!({"username": 42})))
        .await
        .expect("type");
    assert_eq!(wrong_type.status, 400);
    let at = token(&login(&s, "dave", PASSWORD).await, "accessToken");
    let query = s
        .get("/api/v1/users?bogus=1", Some(&at))
        .await
        .expect("query");
    assert_eq!(query.status, 400);
    assert_eq!(query.json["errors"][0]["field"], "bogus");
    let big = s
        .raw(
            "POST",
            "/api/v1/users",
            None,
            Some((
                "application/json",
                format!("{{\"username\":\"{}\"}}", "x".repeat(100_000)),
            )),
        )
        .await
        .expect("413");
    assert_eq!(big.status, 413);
    s.stop().await;
}

fn jsonwebtoken_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_is_down_is_503_quickly() {
    let spare = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = spare.local_addr().expect("addr");
    drop(spare);
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    // A second gateway pointed at nothing.
    let mut config = suite_testkit::hermetic::<suite_gateway::Config>();
    config.user_service_url = format!("http://{dead}");
    config.auth_service_url = format!("http://{dead}");
    let router = suite_gateway::Builder::new(&config)
        .build()
        .expect("app")
        .public;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    let start = Instant::now();
    let lonely = crate::helpers::Suite::with_gateway(&s, addr);
    let r = lonely
        .request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "x", "password": "y"})),
        )
        .await
        .expect("reply");
    assert_eq!(r.status, 503, "{}", r.json);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        !r.json.to_string().contains(&dead.port().to_string()),
        "the address leaked: {}",
        r.json
    );
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    errors_are_problem_details_with_the_right_status,
);
