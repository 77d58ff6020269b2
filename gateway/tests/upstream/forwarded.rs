//! Whose bucket a request behind a trusted proxy counts against: the real
//! server's rate limit keyed by `X-Forwarded-For` as the walk reads it
//! (`suite_grpc::forwarded::client_behind`). A client cannot choose its
//! key with an entry the gateway cannot read.

use super::*;

/// Register (the strict bucket: one request a minute here, so nothing
/// refills during the test) from behind the proxy at 127.0.0.1, whose
/// `X-Forwarded-For` is `forwarded_for`: the status.
async fn register(f: &Fixture, forwarded_for: &str) -> u16 {
    let body = serde_json::json!({});
    let r = f
        .send(
            "POST",
            "/api/v1/users",
            Some(body),
            &[("x-forwarded-for", forwarded_for)],
        )
        .await;
    if r.status == 429 {
        assert!(header(&r, "retry-after").is_some(), "{:?}", r.headers);
    }
    r.status
}

#[tokio::test]
async fn behind_a_trusted_proxy_an_unreadable_entry_cannot_pick_the_rate_limit_key() {
    let f = fixture_with(5_000, |c| {
        c.trusted_proxies = vec![[127, 0, 0, 1].into()];
        c.auth_rate_limit_per_minute = 1;
        c.auth_rate_limit_burst = 1;
    })
    .await;
    let passed = |status: u16| status != 429;

    // The rightmost entry is the client, in any form; left of it, anything
    // the client wrote is ignored.
    assert!(passed(register(&f, "198.51.100.1, 203.0.113.5").await));
    assert_eq!(register(&f, "198.51.100.2, 203.0.113.5:4711").await, 429);
    assert!(passed(
        register(&f, "198.51.100.3, [2001:db8::5]:443").await
    ));
    assert_eq!(register(&f, "198.51.100.4,[2001:db8::5]").await, 429);

    // An entry that is not an address: the request is the proxy's own (the
    // address the walk began at), whatever fake addresses precede it, so
    // the second such request finds the first one's bucket empty.
    assert!(passed(register(&f, "203.0.113.77, unknown").await));
    assert_eq!(register(&f, "203.0.113.78, unknown").await, 429);
    assert_eq!(register(&f, "192.0.2.200, _hidden").await, 429);
    assert_eq!(register(&f, "192.0.2.201, 203.0.113.9:notaport").await, 429);

    // The refused requests never reached the service.
    assert_eq!(f.seen.seen.lock().expect("lock").create_calls, 3);
}
