//! The public REST API, through the gateway, end to end.

use crate::helpers::{Suite, login, spawn_suite_with};
use serde_json::json;
use std::time::{Duration, Instant};
use suite_testkit::Backend;

const PASSWORD: &str = "analytical engine 1843";

async fn register(s: &Suite, name: &str) -> serde_json::Value {
    let r = s
        .request("POST", "/api/v1/users", None, Some(json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD})))
        .await
        .expect("register");
    assert_eq!(r.status, 201, "{}", r.json);
    let location = r
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("Location");
    assert_eq!(
        location,
        format!("/api/v1/users/{}", r.json["id"].as_str().expect("id"))
    );
    r.json
}

fn token(t: &serde_json::Value, field: &str) -> String {
    t[field].as_str().expect("token").to_owned()
}

async fn the_whole_journey_works_over_rest(s: Suite) {
    let ada = register(&s, "ada").await;
    assert_eq!(ada["username"], "ada");
    assert!(ada.get("passwordHash").is_none());
    register(&s, "bob").await;
    register(&s, "cyd").await;

    let t = login(&s, "ada@example.com", PASSWORD).await;
    assert_eq!(t["tokenType"], "Bearer");
    assert_eq!(t["expiresIn"], "900", "int64 as a string, per proto3 JSON");
    let at = token(&t, "accessToken");

    let me = s.get("/api/v1/users/me", Some(&at)).await.expect("me");
    assert_eq!((me.status, me.json["id"].clone()), (200, ada["id"].clone()));

    // Pagination across two pages, nothing twice.
    let page = s
        .get("/api/v1/users?pageSize=2", Some(&at))
        .await
        .expect("list");
    assert_eq!(page.json["users"].as_array().map(Vec::len), Some(2));
    assert_eq!(page.json["totalSize"], 3);
    let next = page.json["nextPageToken"].as_str().expect("more");
    let rest = s
        .get(
            &format!("/api/v1/users?pageSize=2&pageToken={next}"),
            Some(&at),
        )
        .await
        .expect("list 2");
    assert_eq!(rest.json["users"].as_array().map(Vec::len), Some(1));
    assert!(rest.json.get("nextPageToken").is_none());

    // PATCH with only the fields to change: the mask comes from the body's keys.
    let patched = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"displayName": "Countess"})),
        )
        .await
        .expect("patch");
    assert_eq!(
        (patched.status, patched.json["displayName"].clone()),
        (200, json!("Countess"))
    );
    let cleared = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"displayName": ""})),
        )
        .await
        .expect("patch");
    assert!(
        cleared.json.get("displayName").is_none(),
        "{}",
        cleared.json
    );
    assert_eq!(cleared.json["username"], "ada");

    // Change the password, then refresh: the older session is over.
    let rt = token(&t, "refreshToken");
    let changed = s
        .request(
            "POST",
            "/api/v1/users/me:changePassword",
            Some(&at),
            Some(json!({"currentPassword": PASSWORD, "newPassword": "difference engine 1822"})),
        )
        .await
        .expect("change");
    assert_eq!(changed.status, 200, "{}", changed.json);
    let stale = s
        .request(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refreshToken": rt})),
        )
        .await
        .expect("refresh");
    assert_eq!(stale.status, 401);

    // A new session: refresh, logout, and the old refresh token is refused.
    let t = login(&s, "ada", "difference engine 1822").await;
    let fresh = s
        .request(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refreshToken": token(&t, "refreshToken")})),
        )
        .await
        .expect("refresh");
    assert_eq!(fresh.status, 200, "{}", fresh.json);
    let sessions = s
        .get(
            "/api/v1/auth/sessions",
            Some(&token(&fresh.json, "accessToken")),
        )
        .await
        .expect("sessions");
    assert_eq!(sessions.json["sessions"].as_array().map(Vec::len), Some(1));
    let out = s
        .request(
            "POST",
            "/api/v1/auth/logout",
            None,
            Some(json!({"refreshToken": token(&fresh.json, "refreshToken")})),
        )
        .await
        .expect("logout");
    assert_eq!(out.status, 200);
    let refused = s
        .request(
            "POST",
            "/api/v1/auth/refresh",
            None,
            Some(json!({"refreshToken": token(&fresh.json, "refreshToken")})),
        )
        .await
        .expect("refresh");
    assert_eq!(refused.status, 401);

    // The logout ended the session's access token too: a new login deletes.
    let at = token(
        &login(&s, "ada", "difference engine 1822").await,
        "accessToken",
    );
    let deleted = s
        .request("DELETE", "/api/v1/users/me", Some(&at), None)
        .await
        .expect("delete");
    assert_eq!(
        (deleted.status, deleted.json.clone()),
        (204, serde_json::Value::Null)
    );
    // Gone, and the token with it: refused as revoked within a second (the
    // deletion's event), NotFound until then.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let gone = s.get("/api/v1/users/me", Some(&at)).await.expect("me");
        if gone.status == 401 {
            break;
        }
        assert_eq!(gone.status, 404);
        assert!(std::time::Instant::now() < deadline, "never revoked");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let jwks = s.get("/.well-known/jwks.json", None).await.expect("jwks");
    assert_eq!(jwks.json["keys"][0]["kty"], "OKP");
    s.stop().await;
}

async fn one_user_cannot_read_change_or_delete_another(s: Suite) {
    let victim = register(&s, "victim").await;
    register(&s, "mallory").await;
    let at = token(&login(&s, "mallory", PASSWORD).await, "accessToken");
    let path = format!("/api/v1/users/{}", victim["id"].as_str().expect("id"));
    assert_eq!(s.get(&path, Some(&at)).await.expect("get").status, 403);
    let patch = s
        .request(
            "PATCH",
            &path,
            Some(&at),
            Some(json!({"email": "mallory2@example.com"})),
        )
        .await
        .expect("patch");
    assert_eq!(patch.status, 403);
    assert_eq!(
        s.request("DELETE", &path, Some(&at), None)
            .await
            .expect("delete")
            .status,
        403
    );
    let pw = s
        .request(
            "POST",
            &format!("{path}:changePassword"),
            Some(&at),
            Some(json!({"newPassword": "owned by mallory 2026"})),
        )
        .await
        .expect("change");
    assert_eq!(pw.status, 403);
    // Self-promotion is refused too.
    let promote = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"roles": ["admin"]})),
        )
        .await
        .expect("patch");
    assert_eq!(promote.status, 403);
    s.stop().await;
}

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

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    the_whole_journey_works_over_rest,
    one_user_cannot_read_change_or_delete_another,
    errors_are_problem_details_with_the_right_status,
);

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
    let router = suite_gateway::app(&config).expect("app");
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
async fn clients_over_their_rate_limit_get_429_with_retry_after() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |c| {
        c.auth_rate_limit_burst = 2;
        c.auth_rate_limit_per_minute = 1;
        c.rate_limit_burst = 3;
        c.rate_limit_per_second = 1;
    })
    .await
    else {
        return;
    };
    let attempt = || {
        s.request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": "who", "password": "guess guess guess"})),
        )
    };
    assert_eq!(attempt().await.expect("1").status, 401);
    assert_eq!(attempt().await.expect("2").status, 401);
    let limited = attempt().await.expect("3");
    assert_eq!(limited.status, 429, "{}", limited.json);
    let retry: u64 = limited
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        limited
            .headers
            .get("ratelimit-policy")
            .and_then(|v| v.to_str().ok()),
        Some("\"auth\";q=2;w=60")
    );
    assert_eq!(
        limited
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json")
    );
    // The general bucket is separate, and stricter limits do not spill into it.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(s.get("/api/v1/users/me", None).await.expect("get").status);
    }
    assert_eq!(statuses, vec![401, 401, 401, 429]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etag_in_a_patch_body_is_a_precondition_not_a_field_to_change() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    register(&s, "eve").await;
    let at = token(&login(&s, "eve", PASSWORD).await, "accessToken");
    let me = s.get("/api/v1/users/me", Some(&at)).await.expect("me");
    let etag = me.json["etag"].as_str().expect("etag").to_owned();
    let current = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"displayName": "Eve", "etag": etag})),
        )
        .await
        .expect("patch");
    assert_eq!(current.status, 200, "{}", current.json);
    assert_eq!(current.json["displayName"], "Eve");
    let stale = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"displayName": "Mallory", "etag": etag})),
        )
        .await
        .expect("patch");
    assert_eq!(stale.status, 409, "{}", stale.json);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_with_invisible_or_direction_changing_characters_are_refused() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    register(&s, "fay").await;
    let at = token(&login(&s, "fay", PASSWORD).await, "accessToken");
    let posing = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"displayName": "admin\u{202e}\u{200b}"})),
        )
        .await
        .expect("patch");
    assert_eq!(posing.status, 400, "{}", posing.json);
    assert!(
        posing.json.to_string().contains("displayName"),
        "{}",
        posing.json
    );
    let created = s
        .request(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": "gus", "email": "gus@example.com", "password": PASSWORD, "displayName": "a\u{2066}b"})),
        )
        .await
        .expect("register");
    assert_eq!(created.status, 400, "{}", created.json);
    assert!(
        created.json.to_string().contains("displayName"),
        "{}",
        created.json
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_name_longer_than_any_email_is_refused_before_it_is_counted() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let long = "x".repeat(60_000);
    let r = s
        .request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": long, "password": "12345"})),
        )
        .await
        .expect("login");
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(r.json.to_string().contains("login"), "{}", r.json);
    // A 254-character name is looked at (and is simply wrong).
    let longest = format!("{}@example.com", "y".repeat(254 - 12));
    let r = s
        .request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": longest, "password": "12345678"})),
        )
        .await
        .expect("login");
    assert_eq!(r.status, 401, "{}", r.json);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_smuggles_a_sibling_field_past_the_body_field_is_refused() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    register(&s, "hal").await;
    let at = token(&login(&s, "hal", PASSWORD).await, "accessToken");
    let r = s
        .raw(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some((
                "application/json",
                r#"{"displayName":"inj3"},"updateMask":"displayName""#.to_owned(),
            )),
        )
        .await
        .expect("patch");
    assert_eq!(r.status, 400, "{}", r.json);
    let me = s.get("/api/v1/users/me", Some(&at)).await.expect("me");
    assert!(me.json.get("displayName").is_none(), "{}", me.json);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_and_grpc_paths_add_no_metric_series() {
    use suite_proto::codec::BytesCodec;
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    for n in 0..25 {
        let _ = s
            .raw(&format!("ZZPROBE{n:02}"), "/api/v1/users", None, None)
            .await;
    }
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.user))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    for path in [
        "/nope.v1.Probe/Zz01",
        "/nope.v1.Probe2/Zz02",
        "/suite.user.v1.UserService/Zz03",
    ] {
        grpc.ready().await.expect("ready");
        let reply = grpc
            .unary(
                tonic::Request::new(bytes::Bytes::new()),
                http::uri::PathAndQuery::from_static(path),
                BytesCodec,
            )
            .await;
        assert_eq!(
            reply.err().map(|e| e.code()),
            Some(tonic::Code::Unimplemented)
        );
    }
    // The registry the gateway serves at /metrics (one process here).
    let text = suite_telemetry::metrics::metrics().encode();
    assert!(!text.contains("ZZPROBE"), "invented methods became labels");
    assert!(text.contains("http_request_method=\"_OTHER\""), "{text}");
    for invented in ["nope.v1.Probe", "Zz01", "Zz02", "Zz03"] {
        assert!(!text.contains(invented), "{invented} became a label");
    }
    assert!(text.contains("rpc_method=\"other\""), "{text}");
    s.stop().await;
}

/// Writes `first`, then `drip` every 100 ms, until the server answers or
/// closes (returning what it sent) or `deadline` passes (`None`).
async fn trickle(
    gateway: std::net::SocketAddr,
    first: &str,
    drip: &[u8],
    deadline: Duration,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(gateway)
        .await
        .expect("connect");
    stream.write_all(first.as_bytes()).await.expect("write");
    let until = Instant::now() + deadline;
    let mut buf = vec![0u8; 4096];
    while Instant::now() < until {
        tokio::select! {
            read = stream.read(&mut buf) => {
                return Some(match read {
                    Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
                    Err(_) => String::new(),
                });
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if stream.write_all(drip).await.is_err() {
                    return Some(String::new());
                }
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_to_send_its_headers_is_closed() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |c| {
        c.header_read_timeout = Duration::from_millis(300);
    })
    .await
    else {
        return;
    };
    // One header line every 100 ms, never the blank line that ends the head.
    let answer = trickle(
        s.gateway,
        "GET /api/health HTTP/1.1\r\nhost: localhost\r\n",
        b"x-slow: 1\r\n",
        Duration::from_secs(20),
    )
    .await;
    assert!(answer.is_some(), "still reading the head after 20 s");
    assert!(!answer.unwrap_or_default().contains("200 OK"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_past_the_budget_is_408() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |c| {
        c.request_timeout = Duration::from_millis(500);
    })
    .await
    else {
        return;
    };
    // 10 000 bytes announced, one sent every 100 ms.
    let answer = trickle(
        s.gateway,
        "POST /api/v1/users HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 10000\r\n\r\n{",
        b" ",
        Duration::from_secs(20),
    )
    .await
    .expect("no answer after 20 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    s.stop().await;
}

/// Through the gateway the services believe the client's address (the
/// launcher shares the forwarding secret with them): behind a trusted proxy
/// the session shows the client's, and ChangePassword's wrong current
/// passwords are throttled per that address, as logins are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_address_reaches_the_services_and_change_password_is_throttled() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |g| {
        g.trusted_proxies = vec!["127.0.0.1".parse().expect("ip")];
    })
    .await
    else {
        return;
    };
    let user = register(&s, "ines").await;
    let body = json!({"login": "ines", "password": PASSWORD}).to_string();
    let from = [("x-forwarded-for", "203.0.113.50")];
    let r = crate::helpers::send_with(
        s.gateway,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(("application/json", body)),
        &from,
    )
    .await
    .expect("login");
    assert_eq!(r.status, 200, "{}", r.json);
    let access = token(&r.json, "accessToken");
    let sessions = s
        .get("/api/v1/auth/sessions", Some(&access))
        .await
        .expect("sessions");
    assert_eq!(
        sessions.json["sessions"][0]["ipAddress"], "203.0.113.50",
        "{}",
        sessions.json
    );
    let path = format!(
        "/api/v1/users/{}:changePassword",
        user["id"].as_str().expect("id")
    );
    let change = |current: &str| {
        json!({"currentPassword": current, "newPassword": "a fresh and long passphrase 77"})
            .to_string()
    };
    for n in 0..4 {
        let r = crate::helpers::send_with(
            s.gateway,
            "POST",
            &path,
            Some(&access),
            Some(("application/json", change(&format!("guess {n}")))),
            &from,
        )
        .await
        .expect("change");
        assert_eq!(r.status, 400, "{}", r.json);
    }
    let r = crate::helpers::send_with(
        s.gateway,
        "POST",
        &path,
        Some(&access),
        Some(("application/json", change(PASSWORD))),
        &from,
    )
    .await
    .expect("change");
    assert_eq!(r.status, 429, "{}", r.json);
    assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
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

/// The document and the server agree on usernames: the pattern the served
/// OpenAPI document gives is checked against the server with generated
/// names (any case, look-alikes that fold to ASCII, spaces around, lengths
/// about the bounds): a name is taken (stored in lower case) exactly when
/// the pattern matches it, and refused with 400 naming the field otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_username_pattern_is_exactly_what_the_server_takes() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |c| {
        c.rate_limit_per_second = 10_000;
        c.rate_limit_burst = 10_000;
    })
    .await
    else {
        return;
    };
    let doc = s.get("/api/openapi.json", None).await.expect("document");
    let pattern = doc.json["components"]["schemas"]["suite.user.v1.CreateUserRequest"]
        ["properties"]["username"]["pattern"]
        .as_str()
        .expect("the username's pattern in the document")
        .to_owned();
    let rule = regex::Regex::new(&pattern).expect("a pattern regex understands");
    register(&s, "fuzzer").await;
    let t = login(&s, "fuzzer", PASSWORD).await;
    let at = token(&t, "accessToken");

    // A fixed seed: the same names every run.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const ALPHABET: &[char] = &[
        'a', 'z', 'A', 'Z', 'q', 'Q', '0', '9', '_', '.', '-', ' ', '\t', '!', '@',
        '\u{212A}', // KELVIN SIGN, which Unicode folds to `k`
        '\u{0130}', // I WITH DOT ABOVE
        '\u{FF21}', // FULLWIDTH A
        '\u{200B}', // ZERO WIDTH SPACE
        'é', 'ß',
    ];
    let mut names: Vec<String> = vec![
        "AAA".into(),
        "aaa".into(),
        " abc".into(),
        "abc ".into(),
        "\u{212A}ate".into(),
        "ab".into(),
        "A".repeat(32),
        "a".repeat(33),
    ];
    for _ in 0..300 {
        let len = 1 + (next() % 36) as usize;
        // Mostly allowed characters, so that both answers are common.
        let name: String = (0..len)
            .map(|_| {
                let r = next();
                if r % 16 == 0 {
                    ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                } else {
                    ALPHABET[(r >> 8) as usize % 11]
                }
            })
            .collect();
        names.push(name);
    }
    let (mut taken, mut refused) = (0, 0);
    for name in &names {
        let r = s
            .request(
                "PATCH",
                "/api/v1/users/me",
                Some(&at),
                Some(json!({ "username": name })),
            )
            .await
            .expect("patch");
        if rule.is_match(name) {
            // Another name of this run, in another case, may hold it.
            if r.status == 409 {
                continue;
            }
            assert_eq!(r.status, 200, "{name:?} matches {pattern}: {}", r.json);
            assert_eq!(
                r.json["username"],
                json!(name.to_ascii_lowercase()),
                "{name:?}"
            );
            taken += 1;
        } else {
            assert_eq!(
                r.status, 400,
                "{name:?} does not match {pattern}: {}",
                r.json
            );
            assert!(
                r.json.to_string().contains("username"),
                "{name:?}: the field is named: {}",
                r.json
            );
            refused += 1;
        }
    }
    assert!(
        taken > 30 && refused > 30,
        "taken {taken}, refused {refused}"
    );
    s.stop().await;
}
