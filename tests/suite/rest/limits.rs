//! Rate limits, metric series that clients cannot multiply, and the
//! client's address as the services see it (their throttles count by it).

use super::{PASSWORD, register, token};
use crate::helpers::spawn_suite_with;
use serde_json::json;
use suite_testkit::Backend;

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
