//! Event streams as an attacker meets them: many held open at once must not
//! deny the API to anyone, one user or one address gets a share of them,
//! and a stream ends the moment its token is revoked (SSE and gRPC alike).
//! Also what a restart without NATS keeps, and a refresh after a demotion.

use crate::{
    helpers::{Suite, spawn_suite, spawn_suite_tuned},
    sse::Stream,
};
use serde_json::json;
use std::time::Duration;
use suite_proto::user::{
    GetUserRequest, StreamEventsRequest, StreamMyEventsRequest,
    user_service_client::UserServiceClient,
};
use suite_testkit::Backend;
use tonic::Code;

const PASSWORD: &str = "a long passphrase for streams";

/// How long anything may take before the test fails (a deadline, never a measure).
const PATIENCE: Duration = Duration::from_secs(10);

/// Registers `name` (with `roles`, by `admin`, if given) and logs them in:
/// (id, access token, refresh token).
async fn user(
    s: &Suite,
    name: &str,
    admin: Option<&str>,
    roles: &[&str],
) -> (String, String, String) {
    let mut body =
        json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD});
    if !roles.is_empty() {
        body["roles"] = json!(roles);
    }
    let created = s
        .request("POST", "/api/v1/users", admin, Some(body))
        .await
        .expect("register");
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.json["id"].as_str().expect("id").to_owned();
    let login = crate::helpers::login(s, name, PASSWORD).await;
    let token = |f: &str| login[f].as_str().expect("token").to_owned();
    (id, token("accessToken"), token("refreshToken"))
}

fn forwarded_for(address: &str) -> [(&'static str, &str); 1] {
    [("x-forwarded-for", address)]
}

/// The caller's own event stream, opened from `address`.
async fn my_events_from(s: &Suite, token: &str, address: &str) -> Stream {
    Stream::open_with(
        s,
        "/api/v1/users/me/events",
        token,
        None,
        &forwarded_for(address),
    )
    .await
}

/// A stream refused with 429, its problem's detail naming `limit`.
async fn refused_as_too_many(stream: Stream, limit: &str) {
    assert_eq!(stream.status, 429);
    let problem = stream.problem().await;
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains(limit)),
        "{problem}"
    );
}

async fn user_service(s: &Suite) -> UserServiceClient<tonic::transport::Channel> {
    UserServiceClient::connect(format!("http://{}", s.user))
        .await
        .expect("user service")
}

fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_never_starve_the_api_and_each_user_and_address_gets_a_share() {
    // A user service that allows 8 streams per connection: 15 open streams
    // would take every one of them on a shared connection.
    let Some(s) = spawn_suite_tuned(
        Backend::Sqlite,
        None,
        |g| {
            g.event_streams_per_connection = 4;
            g.max_event_streams = 15;
            g.max_event_streams_per_user = 3;
            g.max_event_streams_per_address = 4;
            // The test's addresses are X-Forwarded-For's, from this proxy.
            g.trusted_proxies = vec![[127, 0, 0, 1].into()];
        },
        |u| u.grpc.grpc_max_concurrent_streams = 8,
    )
    .await
    else {
        return;
    };
    let mut tokens = Vec::new();
    for i in 0..7 {
        tokens.push(user(&s, &format!("streamer{i}"), None, &[]).await.1);
    }
    let mut open = Vec::new();
    for (i, token) in tokens.iter().take(5).enumerate() {
        let address = format!("10.0.0.{i}");
        for _ in 0..3 {
            let stream = my_events_from(&s, token, &address).await;
            assert_eq!(stream.status, 200, "stream {} of user {i}", open.len());
            open.push((i, stream));
        }
    }

    // 15 streams are open: the API answers everyone as before.
    let me = s
        .get("/api/v1/users/me", Some(&tokens[6]))
        .await
        .expect("get");
    assert_eq!(me.status, 200, "{}", me.json);
    let listed = s
        .get("/api/v1/users", Some(&tokens[6]))
        .await
        .expect("list");
    assert_eq!(listed.status, 200, "{}", listed.json);
    crate::helpers::register_as(&s, "latecomer", "late@example.com", PASSWORD).await;
    let (status, body) = s.admin_get("/readyz").await.expect("readyz");
    assert_eq!(status, 200, "{body}");
    // And the last stream, past the first 8, really flows.
    let r = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&tokens[4]),
            Some(json!({"displayName": "Still streaming"})),
        )
        .await
        .expect("patch");
    assert_eq!(r.status, 200, "{}", r.json);
    let (_, last) = open.last_mut().expect("streams");
    let (_, data) = last.next_update(PATIENCE).await;
    assert_eq!(
        data["userUpdated"]["user"]["displayName"],
        "Still streaming"
    );

    // A user's fourth stream: 429, however many are free.
    let fourth = my_events_from(&s, &tokens[0], "10.0.9.9").await;
    refused_as_too_many(fourth, "for one user").await;
    // Every slot taken (by five users): 503 for a sixth.
    let full = my_events_from(&s, &tokens[5], "10.0.9.9").await;
    assert_eq!(full.status, 503);
    drop(full);
    // A stream given back is free for another, but an address holds at
    // most four, whoever's tokens it brings.
    let at = open.iter().position(|(i, _)| *i == 1).expect("user 1's");
    drop(open.remove(at));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let from_zero = loop {
        let stream = my_events_from(&s, &tokens[5], "10.0.0.0").await;
        // The slot comes back once the gateway sees the client go.
        if stream.status != 503 || tokio::time::Instant::now() > deadline {
            break stream;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(from_zero.status, 200, "a freed slot is taken again");
    let crowded = my_events_from(&s, &tokens[6], "10.0.0.0").await;
    refused_as_too_many(crowded, "from one address").await;
    drop((open, from_zero));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_caller_gets_a_share_of_the_user_services_streams_too() {
    let Some(s) = spawn_suite_tuned(
        Backend::Sqlite,
        None,
        |_| {},
        |u| {
            u.max_event_streams_per_user = 2;
        },
    )
    .await
    else {
        return;
    };
    let (_, token, _) = user(&s, "grpcstreamer", None, &[]).await;
    let mut client = user_service(&s).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let stream = client
            .stream_my_events(authed(StreamMyEventsRequest::default(), &token))
            .await
            .expect("a stream within the share");
        held.push(stream);
    }
    let third = client
        .stream_my_events(authed(StreamMyEventsRequest::default(), &token))
        .await
        .expect_err("past the share");
    assert_eq!(third.code(), Code::ResourceExhausted, "{third:?}");
    // Given back when the client goes.
    drop(held.pop());
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match client
            .stream_my_events(authed(StreamMyEventsRequest::default(), &token))
            .await
        {
            Ok(stream) => {
                held.push(stream);
                break;
            }
            Err(e)
                if e.code() == Code::ResourceExhausted
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the freed slot never came back: {e:?}"),
        }
    }
    drop(held);
    s.stop().await;
}

/// Reads `stream` until its `event: error`, which must say `detail`.
async fn ends_with(stream: &mut Stream, detail: &str) {
    loop {
        let event = stream.next_event(PATIENCE).await;
        if Stream::field(&event, "event").as_deref() == Some("error") {
            let data = Stream::field(&event, "data").expect("data");
            let problem: serde_json::Value = serde_json::from_str(&data).expect("JSON");
            assert_eq!(problem["status"], 401, "{problem}");
            assert_eq!(problem["detail"], detail, "{problem}");
            return;
        }
    }
}

/// Reads a gRPC stream until it ends with Unauthenticated "access token revoked".
async fn grpc_ends_revoked<T>(stream: &mut tonic::Streaming<T>) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended without a status"),
                Err(s) => {
                    assert_eq!(s.code(), Code::Unauthenticated, "{s:?}");
                    assert_eq!(s.message(), "access token revoked");
                    return;
                }
            }
        }
    })
    .await
    .expect("the stream ends in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_end_when_their_token_is_revoked() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    let mut client = user_service(&s).await;

    // A logout ends the session's streams.
    let (_, token, refresh) = user(&s, "leaver", None, &[]).await;
    let mut sse = Stream::open(&s, "/api/v1/users/me/events", &token, None).await;
    assert_eq!(sse.status, 200);
    let mut grpc = client
        .stream_my_events(authed(StreamMyEventsRequest::default(), &token))
        .await
        .expect("stream")
        .into_inner();
    let out = s.with_refresh_token("/api/v1/auth/logout", refresh).await;
    assert!(out.status == 204 || out.status == 200, "{}", out.json);
    ends_with(&mut sse, "access token revoked").await;
    grpc_ends_revoked(&mut grpc).await;

    // A password change ends the streams of every token from before it.
    let (_, token, _) = user(&s, "changer", None, &[]).await;
    let mut sse = Stream::open(&s, "/api/v1/users/me/events", &token, None).await;
    let mut grpc = client
        .stream_my_events(authed(StreamMyEventsRequest::default(), &token))
        .await
        .expect("stream")
        .into_inner();
    let changed = s
        .request(
            "POST",
            "/api/v1/users/me:changePassword",
            Some(&token),
            Some(
                json!({"currentPassword": PASSWORD, "newPassword": "another long passphrase 2026"}),
            ),
        )
        .await
        .expect("change");
    assert_eq!(changed.status, 200, "{}", changed.json);
    ends_with(&mut sse, "access token revoked").await;
    grpc_ends_revoked(&mut grpc).await;

    // An admin's stream of everyone's events ends at the demotion.
    let root = s.mint(&uuid::Uuid::now_v7().to_string(), &["user", "admin"]);
    let (admin_id, admin, _) = user(&s, "watcher", Some(&root), &["user", "admin"]).await;
    let mut everyone = Stream::open(&s, "/api/v1/events", &admin, None).await;
    assert_eq!(everyone.status, 200);
    let mut grpc = client
        .stream_events(authed(StreamEventsRequest::default(), &admin))
        .await
        .expect("stream")
        .into_inner();
    let demoted = s
        .request(
            "PATCH",
            &format!("/api/v1/users/{admin_id}?updateMask=roles"),
            Some(&root),
            Some(json!({"roles": ["user"]})),
        )
        .await
        .expect("demote");
    assert_eq!(demoted.status, 200, "{}", demoted.json);
    ends_with(&mut everyone, "access token revoked").await;
    grpc_ends_revoked(&mut grpc).await;
    // Nor can it start again with that token.
    let again = Stream::open(&s, "/api/v1/events", &admin, None).await;
    assert_eq!(again.status, 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_without_nats_still_refuses_what_was_revoked_before_it() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    let (_, logged_out, refresh) = user(&s, "before", None, &[]).await;
    let r = s.with_refresh_token("/api/v1/auth/logout", refresh).await;
    assert!(r.status == 204 || r.status == 200, "{}", r.json);
    let (_, old, _) = user(&s, "changer", None, &[]).await;
    let r = s
        .request(
            "POST",
            "/api/v1/users/me:changePassword",
            Some(&old),
            Some(
                json!({"currentPassword": PASSWORD, "newPassword": "another long passphrase 2026"}),
            ),
        )
        .await
        .expect("change");
    assert_eq!(r.status, 200, "{}", r.json);
    let (_, kept, _) = user(&s, "bystander", None, &[]).await;
    for token in [&logged_out, &old] {
        let r = s.get("/api/v1/users/me", Some(token)).await.expect("get");
        assert_eq!(r.status, 401, "refused before the restart: {}", r.json);
    }

    let s = s.restart().await;
    let mut client = user_service(&s).await;
    for token in [&logged_out, &old] {
        let r = s.get("/api/v1/users/me", Some(token)).await.expect("get");
        assert_eq!(r.status, 401, "refused after the restart: {}", r.json);
        assert_eq!(r.json["detail"], "access token revoked");
        let refused = client
            .get_user(authed(GetUserRequest { id: "me".into() }, token))
            .await
            .expect_err("refused on gRPC too");
        assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    }
    // What was never revoked still works.
    let r = s.get("/api/v1/users/me", Some(&kept)).await.expect("get");
    assert_eq!(r.status, 200, "{}", r.json);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_after_a_demotion_is_acknowledged_mints_nothing() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    let root = s.mint(&uuid::Uuid::now_v7().to_string(), &["user", "admin"]);
    for round in 0..3 {
        let name = format!("demoted{round}");
        let (id, _, refresh) = user(&s, &name, Some(&root), &["user", "admin"]).await;
        let demoted = s
            .request(
                "PATCH",
                &format!("/api/v1/users/{id}?updateMask=roles"),
                Some(&root),
                Some(json!({"roles": ["user"]})),
            )
            .await
            .expect("demote");
        assert_eq!(demoted.status, 200, "{}", demoted.json);
        // At once, before the auth service may have heard of it.
        let r = s.with_refresh_token("/api/v1/auth/refresh", refresh).await;
        assert_eq!(r.status, 401, "round {round}: {}", r.json);
    }
    s.stop().await;
}
