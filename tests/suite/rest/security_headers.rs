//! What the gateway tells browsers (security headers, CORS) and what it
//! keeps to the admin port.

use super::PASSWORD;
use crate::helpers::spawn_suite_with;
use serde_json::json;
use suite_testkit::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_carry_security_headers_and_cors_follows_the_allowlist() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |c| {
        c.cors_allowed_origins = vec!["https://app.example".parse().expect("origin")];
        c.hsts_max_age_secs = 31_536_000;
    })
    .await
    else {
        return;
    };
    let header = |r: &crate::helpers::Reply, name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    for r in [
        s.get("/api/v1/users/me", None).await.expect("401"),
        s.request(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": "hedy", "email": "hedy@example.com", "password": PASSWORD})),
        )
        .await
        .expect("201"),
    ] {
        assert_eq!(
            header(&r, "x-content-type-options").as_deref(),
            Some("nosniff")
        );
        assert_eq!(header(&r, "x-frame-options").as_deref(), Some("DENY"));
        assert_eq!(
            header(&r, "referrer-policy").as_deref(),
            Some("no-referrer")
        );
        assert_eq!(
            header(&r, "cross-origin-resource-policy").as_deref(),
            Some("same-origin")
        );
        assert_eq!(header(&r, "cache-control").as_deref(), Some("no-store"));
        assert_eq!(
            header(&r, "strict-transport-security").as_deref(),
            Some("max-age=31536000; includeSubDomains")
        );
    }
    let jwks = s.get("/.well-known/jwks.json", None).await.expect("jwks");
    assert_eq!(
        header(&jwks, "cache-control").as_deref(),
        Some("public, max-age=300")
    );
    let preflight = |origin: &'static str| async move {
        let headers = [
            ("origin", origin),
            ("access-control-request-method", "POST"),
        ];
        crate::helpers::send_with(s.gateway, "OPTIONS", "/api/v1/users", None, None, &headers).await
    };
    let allowed = preflight("https://app.example").await.expect("preflight");
    assert_eq!(
        header(&allowed, "access-control-allow-origin").as_deref(),
        Some("https://app.example")
    );
    let denied = preflight("https://evil.example").await.expect("preflight");
    assert_eq!(header(&denied, "access-control-allow-origin"), None);
    // An id the client sends is echoed; one is made up otherwise.
    let echoed = crate::helpers::send_with(
        s.gateway,
        "GET",
        "/api/health",
        None,
        None,
        &[("x-request-id", "abc-123")],
    )
    .await
    .expect("health");
    assert_eq!(
        header(&echoed, "x-request-id"),
        None,
        "liveness is not transcoded"
    );
    let echoed = crate::helpers::send_with(
        s.gateway,
        "GET",
        "/api/v1/users/me",
        None,
        None,
        &[("x-request-id", "abc-123")],
    )
    .await
    .expect("me");
    assert_eq!(header(&echoed, "x-request-id").as_deref(), Some("abc-123"));
    assert_eq!(echoed.json["requestId"], "abc-123");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_readiness_answer_on_the_admin_port_and_are_unknown_paths_publicly() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    // Publicly: liveness and the contract, and /metrics, /readyz are 404
    // problem details exactly like a path that never existed.
    let health = s.get("/api/health", None).await.expect("health");
    assert_eq!(health.status, 200, "{}", health.json);
    let openapi = s.get("/api/openapi.json", None).await.expect("openapi");
    assert_eq!(openapi.status, 200);
    let unknown = s.get("/no-such-path", None).await.expect("unknown");
    assert_eq!(unknown.status, 404);
    for path in ["/metrics", "/readyz", "/livez"] {
        let r = s.get(path, None).await.expect(path);
        assert_eq!(r.status, 404, "{path}: {}", r.json);
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/problem+json"),
            "{path}"
        );
        assert_eq!(r.json["title"], unknown.json["title"], "{path}");
        assert_eq!(r.json["status"], 404, "{path}");
    }
    // On the admin port: readiness, liveness and the Prometheus text, which
    // counts the public requests above.
    let (status, ready) = s.admin_get("/readyz").await.expect("readyz");
    assert_eq!(status, 200, "{ready}");
    assert!(ready.contains("ready"), "{ready}");
    let (status, _) = s.admin_get("/livez").await.expect("livez");
    assert_eq!(status, 200);
    let (status, metrics) = s.admin_get("/metrics").await.expect("metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains("http_server_request_duration_seconds_count{")
            && metrics.contains("http_route=\"/api/health\""),
        "{metrics}"
    );
    // The admin port serves nothing of the API.
    let (status, _) = s.admin_get("/api/health").await.expect("admin api");
    assert_eq!(status, 404);
    s.stop().await;
}
