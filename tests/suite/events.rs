//! The suite acting on its events: logout, revocation, deletion, a password
//! change and a demotion each make the old access token fail at every
//! gateway and at the service (no round trip per request: each verifier's
//! revocations, fed by the events), and the auth service ends the user's
//! sessions by itself; in-process, and on NATS with two gateway replicas.

use crate::helpers::{Backend, GatewayClient, Suite, spawn_suite_on};
use serde_json::{Value, json};
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};
use suite_proto::{
    auth::RevocationReason,
    user::{
        Event, GetUserRequest, StreamEventsRequest, StreamEventsResponse, event::Data,
        user_service_client::UserServiceClient,
    },
};
use suite_testkit::NatsServer;
use tokio_stream::StreamExt;
use tonic::Code;

/// How long a revocation may take to reach every verifier in the test (the
/// goal is a second; the benchmark measures it, the test only proves it).
const DEADLINE: Duration = Duration::from_secs(10);

fn string(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_owned()
}

/// Registers `name` and logs in: (user id, access token, refresh token, session id).
async fn user_logged_in(s: &Suite, name: &str) -> (String, String, String, String) {
    let created = s
        .request(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": name, "email": format!("{name}@example.com"), "password": "a long passphrase for events"})),
        )
        .await
        .expect("register");
    assert_eq!(created.status, 201, "{}", created.json);
    let (at, rt, sid) = login(s, name, "a long passphrase for events").await;
    (string(&created.json, "id"), at, rt, sid)
}

/// Logs in: (access token, refresh token, session id).
async fn login(s: &Suite, name: &str, password: &str) -> (String, String, String) {
    let r = crate::helpers::login(s, name, password).await;
    (
        string(&r, "accessToken"),
        string(&r, "refreshToken"),
        string(&r, "sessionId"),
    )
}

/// Waits until `token` is refused as revoked at every gateway and by the
/// user service itself; returns how long it took.
async fn refused_everywhere(gateways: &[GatewayClient], user: SocketAddr, token: &str) -> Duration {
    let start = Instant::now();
    let mut client = UserServiceClient::connect(format!("http://{user}"))
        .await
        .expect("user service");
    let mut pending: Vec<usize> = (0..=gateways.len()).collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for &i in &pending {
            let refused = if i < gateways.len() {
                let r = gateways[i]
                    .request("GET", "/api/v1/users/me", Some(token), None)
                    .await
                    .expect("get");
                r.status == 401 && r.json["detail"] == "access token revoked"
            } else {
                let mut req = tonic::Request::new(GetUserRequest { id: "me".into() });
                req.metadata_mut().insert(
                    "authorization",
                    format!("Bearer {token}").parse().expect("ascii"),
                );
                matches!(client.get_user(req).await, Err(s) if s.code() == Code::Unauthenticated && s.message() == "access token revoked")
            };
            if !refused {
                still.push(i);
            }
        }
        pending = still;
        assert!(start.elapsed() < DEADLINE, "still accepted at {pending:?}");
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    start.elapsed()
}

async fn accepted_everywhere(gateways: &[GatewayClient], token: &str) {
    for g in gateways {
        let r = g
            .request("GET", "/api/v1/users/me", Some(token), None)
            .await
            .expect("get");
        assert_eq!(r.status, 200, "{}", r.json);
    }
}

/// Every admin's event feed, from now on (the user service's StreamEvents).
async fn feed(s: &Suite, admin: &str) -> tonic::Streaming<StreamEventsResponse> {
    let mut client = UserServiceClient::connect(format!("http://{}", s.user))
        .await
        .expect("user service");
    let mut req = tonic::Request::new(StreamEventsRequest::default());
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {admin}").parse().expect("ascii"),
    );
    client
        .stream_events(req)
        .await
        .expect("stream")
        .into_inner()
}

/// Reads `feed` until `wanted` has been seen (with a deadline).
async fn wait_for_event(
    feed: &mut tonic::Streaming<StreamEventsResponse>,
    wanted: impl Fn(&Event) -> bool,
) -> Event {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(left, feed.next())
            .await
            .expect("the event in time")
            .expect("the feed goes on")
            .expect("no error")
            .event
            .expect("an event");
        if wanted(&next) {
            return next;
        }
    }
}

fn revoked_for(user: &str, reason: RevocationReason) -> impl Fn(&Event) -> bool + '_ {
    move |e| {
        e.subject == user
            && matches!(&e.data, Some(Data::SessionRevoked(r)) if r.reason == reason as i32)
    }
}

async fn revocations_take_effect_everywhere(s: Suite, gateways: Vec<GatewayClient>) {
    let root_admin = s.mint(&uuid::Uuid::now_v7().to_string(), &["user", "admin"]);
    let mut events = feed(&s, &root_admin).await;
    let mut took = Vec::new();

    // Logout.
    let (ann, at, rt, sid) = user_logged_in(&s, "ann").await;
    accepted_everywhere(&gateways, &at).await;
    let started = wait_for_event(&mut events, |e| {
        e.subject == ann && matches!(e.data, Some(Data::SessionStarted(_)))
    })
    .await;
    assert_eq!(started.r#type, "suite.auth.v1.SessionStarted");
    assert_eq!(started.source, "suite-auth");
    let out = s.with_refresh_token("/api/v1/auth/logout", rt).await;
    assert_eq!(out.status, 200, "{}", out.json);
    took.push(("logout", refused_everywhere(&gateways, s.user, &at).await));
    wait_for_event(
        &mut events,
        |e| matches!(&e.data, Some(Data::SessionEnded(x)) if x.session_id == sid),
    )
    .await;

    // RevokeSession by the user.
    let (bob, at, _, sid) = user_logged_in(&s, "bob").await;
    let revoked = s
        .request(
            "DELETE",
            &format!("/api/v1/auth/sessions/{sid}"),
            Some(&at),
            None,
        )
        .await
        .expect("revoke");
    assert!(revoked.status < 300, "{}", revoked.json);
    took.push(("revoke", refused_everywhere(&gateways, s.user, &at).await));
    wait_for_event(&mut events, revoked_for(&bob, RevocationReason::ByUser)).await;

    // Deletion: the auth service ends the sessions by itself.
    let (cat, at, rt, _) = user_logged_in(&s, "cat").await;
    let gone = s
        .request("DELETE", "/api/v1/users/me", Some(&at), None)
        .await
        .expect("delete");
    assert_eq!(gone.status, 204);
    took.push(("delete", refused_everywhere(&gateways, s.user, &at).await));
    wait_for_event(
        &mut events,
        revoked_for(&cat, RevocationReason::UserDeleted),
    )
    .await;
    let refresh = s.with_refresh_token("/api/v1/auth/refresh", rt).await;
    assert_eq!(refresh.status, 401);

    // A password change.
    let (dan, at, _, _) = user_logged_in(&s, "dan").await;
    let changed = s
        .request(
            "POST",
            "/api/v1/users/me:changePassword",
            Some(&at),
            Some(json!({"currentPassword": "a long passphrase for events", "newPassword": "another long passphrase 2026"})),
        )
        .await
        .expect("change");
    assert_eq!(changed.status, 200, "{}", changed.json);
    took.push(("password", refused_everywhere(&gateways, s.user, &at).await));
    wait_for_event(
        &mut events,
        revoked_for(&dan, RevocationReason::PasswordChanged),
    )
    .await;
    let (fresh, _, _) = login(&s, "dan", "another long passphrase 2026").await;
    accepted_everywhere(&gateways, &fresh).await;

    // A demotion: the demoted admin's token can no longer create admins.
    let made = s
        .request(
            "POST",
            "/api/v1/users",
            Some(&root_admin),
            Some(json!({"username": "eve", "email": "eve@example.com", "password": "a long passphrase for events", "roles": ["user", "admin"]})),
        )
        .await
        .expect("admin");
    assert_eq!(made.status, 201, "{}", made.json);
    let eve = string(&made.json, "id");
    let (at, _, _) = login(&s, "eve", "a long passphrase for events").await;
    let as_admin = |name: &str| json!({"username": name, "email": format!("{name}@example.com"), "password": "a long passphrase for events", "roles": ["admin"]});
    let ok = s
        .request("POST", "/api/v1/users", Some(&at), Some(as_admin("fay")))
        .await
        .expect("create");
    assert_eq!(ok.status, 201, "an admin creates admins: {}", ok.json);
    let demoted = s
        .request(
            "PATCH",
            &format!("/api/v1/users/{eve}?updateMask=roles"),
            Some(&root_admin),
            Some(json!({"roles": ["user"]})),
        )
        .await
        .expect("demote");
    assert_eq!(demoted.status, 200, "{}", demoted.json);
    took.push(("demotion", refused_everywhere(&gateways, s.user, &at).await));
    for g in &gateways {
        let refused = g
            .request("POST", "/api/v1/users", Some(&at), Some(as_admin("gus")))
            .await
            .expect("create");
        assert_eq!(refused.status, 401, "{}", refused.json);
    }
    wait_for_event(
        &mut events,
        revoked_for(&eve, RevocationReason::RolesChanged),
    )
    .await;
    let (at, _, _) = login(&s, "eve", "a long passphrase for events").await;
    let forbidden = s
        .request("POST", "/api/v1/users", Some(&at), Some(as_admin("gus")))
        .await
        .expect("create");
    assert_eq!(forbidden.status, 403, "{}", forbidden.json);
    eprintln!("revoked everywhere after: {took:?}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_take_effect_at_once_in_process() {
    let Some(s) = spawn_suite_on(Backend::Sqlite, None, |_| {}).await else {
        return;
    };
    let gateways = vec![Suite::with_gateway(&s, s.gateway)];
    revocations_take_effect_everywhere(s, gateways).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_take_effect_at_once_on_nats_with_two_gateways() {
    let nats = NatsServer::start();
    let Some(s) = spawn_suite_on(Backend::Postgres, Some(nats.url()), |_| {}).await else {
        return;
    };
    let url = nats.url();
    let other = crate::helpers::another_gateway(&s, |c| c.events.nats_url = Some(url)).await;
    let gateways = vec![
        Suite::with_gateway(&s, s.gateway),
        Suite::with_gateway(&s, other),
    ];
    revocations_take_effect_everywhere(s, gateways).await;
}
