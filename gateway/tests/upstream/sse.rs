//! Server-streaming RPCs as Server-Sent Events, against the scripted
//! StreamMyEvents (events, then silence until the client goes) and
//! StreamEvents (refused before any event). Nothing here sleeps for a fixed
//! time or asserts on one: each test waits for what it expects, bounded.

use super::*;
use suite_testkit::sse::{Block, PATIENCE, Stream, field};

fn data(block: &Block) -> serde_json::Value {
    serde_json::from_str(field(block, "data").expect("data")).expect("JSON data")
}

/// Waits until `check` holds of what the scripted service saw.
async fn seen_until(f: &Fixture, what: &str, check: impl Fn(&Seen) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if check(&f.seen.seen.lock().expect("lock")) {
            return;
        }
        assert!(Instant::now() < deadline, "the upstream never saw: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const ME: &str = "/api/v1/users/me/events";

#[tokio::test]
async fn streamed_messages_arrive_as_events_with_id_type_and_json_data() {
    let f = fixture(5_000).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let headers = [("x-request-id", "req-sse"), ("traceparent", traceparent)];
    let mut s = Stream::open(f.gateway, ME, &f.token, &headers).await;
    assert_eq!(s.status, 200);
    assert_eq!(s.header("content-type"), Some("text/event-stream"));
    assert_eq!(s.header("cache-control"), Some("no-store"));
    assert_eq!(s.header("x-accel-buffering"), Some("no"));
    assert_eq!(s.header("content-encoding"), None);
    for expected in scripted_events() {
        let event = s.next_event().await.expect("an event");
        assert_eq!(field(&event, "id"), Some(expected.id.as_str()));
        assert_eq!(field(&event, "event"), Some("suite.user.v1.UserUpdated"));
        let json = data(&event);
        assert_eq!(json["id"], expected.id);
        assert_eq!(json["type"], "suite.user.v1.UserUpdated");
        // proto3 JSON: the oneof member by its JSON name, fields in lowerCamelCase.
        assert_eq!(json["userUpdated"]["user"]["username"], "ada");
        assert_eq!(json["userUpdated"]["changedFields"][0], "display_name");
    }
    // The metadata of a unary call, and no deadline on the stream.
    let get = f.seen_metadata(|seen| seen.stream_metadata.clone());
    assert_eq!(get("authorization"), Some(format!("Bearer {}", f.token)));
    assert_eq!(get("x-request-id").as_deref(), Some("req-sse"));
    assert_eq!(get("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    // The trace goes on (the same trace id, whichever span is the parent).
    assert!(
        get("traceparent").is_some_and(|t| t.contains("4bf92f3577b34da6a3ce929d0e0e4736")),
        "{:?}",
        get("traceparent")
    );
    assert_eq!(get("grpc-timeout"), None);
}

#[tokio::test]
async fn last_event_id_fills_the_request_and_wins_over_the_query() {
    let f = fixture(5_000).await;
    let id = "0190f5c4-0000-7000-8000-000000000002";
    let mut s = Stream::open(
        f.gateway,
        &format!("{ME}?lastEventId=from-the-query"),
        &f.token,
        &[("last-event-id", id)],
    )
    .await;
    assert_eq!(s.status, 200);
    s.next_event().await.expect("an event");
    let mut q = Stream::open(
        f.gateway,
        &format!("{ME}?lastEventId=from-the-query"),
        &f.token,
        &[],
    )
    .await;
    assert_eq!(q.status, 200);
    q.next_event().await.expect("an event");
    let seen = f.seen.seen.lock().expect("lock").last_event_ids.clone();
    assert_eq!(seen, vec![id.to_owned(), "from-the-query".to_owned()]);
}

#[tokio::test]
async fn an_error_before_the_first_event_is_a_problem_with_its_status() {
    let f = fixture(5_000).await;
    let s = Stream::open(f.gateway, "/api/v1/events", &f.token, &[]).await;
    assert_eq!(s.status, 403);
    assert_eq!(s.header("content-type"), Some("application/problem+json"));
    let json = s.json().await;
    assert_eq!(json["status"], 403);
    assert_eq!(json["detail"], "only admins may read every user's events");
    // No token: 401 before any call.
    let s = Stream::open(f.gateway, ME, "not-a-token", &[]).await;
    assert_eq!(s.status, 401);
    assert_eq!(s.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn an_error_after_the_first_event_ends_the_stream_with_an_error_event() {
    let f = fixture(5_000).await;
    let mut s = Stream::open(
        f.gateway,
        ME,
        &f.token,
        &[("last-event-id", "end-with-error")],
    )
    .await;
    assert_eq!(s.status, 200);
    s.next_event().await.expect("first");
    s.next_event().await.expect("second");
    let error = s.next_event().await.expect("the error event");
    assert_eq!(field(&error, "event"), Some("error"));
    assert_eq!(field(&error, "id"), None);
    let problem = data(&error);
    assert_eq!(problem["status"], 401);
    assert_eq!(problem["detail"], "access token expired");
    assert!(problem["requestId"].is_string(), "{problem}");
    assert!(s.next_block().await.is_none(), "the stream ended");
}

#[tokio::test]
async fn silence_is_broken_by_keep_alive_comments() {
    let f = fixture_with(5_000, |c| {
        c.event_stream_keep_alive = Duration::from_millis(20);
    })
    .await;
    let mut s = Stream::open(f.gateway, ME, &f.token, &[]).await;
    assert_eq!(s.status, 200);
    // After the scripted events the service is silent: comments follow.
    let mut events = 0;
    loop {
        let block = s.next_block().await.expect("the stream goes on");
        if block == vec![(String::new(), "keep-alive".to_owned())] {
            break;
        }
        events += 1;
        assert!(events <= 2, "an unexpected block: {block:?}");
    }
}

#[tokio::test]
async fn a_client_that_goes_drops_the_upstream_stream() {
    let f = fixture_with(5_000, |c| {
        // The gateway finds the connection closed at its next write at the latest.
        c.event_stream_keep_alive = Duration::from_millis(20);
    })
    .await;
    let mut s = Stream::open(f.gateway, ME, &f.token, &[]).await;
    s.next_event().await.expect("an event");
    drop(s);
    seen_until(&f, "the stream dropped", |seen| seen.streams_dropped == 1).await;
}

#[tokio::test]
async fn the_stream_ends_when_the_access_token_expires() {
    let f = fixture(5_000).await;
    // Seconds from now (tokens count in whole seconds): the wait is bounded by PATIENCE.
    let token = sign(&f.key, 2);
    let mut s = Stream::open(f.gateway, ME, &token, &[]).await;
    assert_eq!(s.status, 200);
    s.next_event().await.expect("first");
    s.next_event().await.expect("second");
    // The scripted service would stream on: the gateway ends it.
    let error = s.next_event().await.expect("the error event");
    assert_eq!(field(&error, "event"), Some("error"));
    assert_eq!(data(&error)["status"], 401);
    assert_eq!(data(&error)["detail"], "access token expired");
    assert!(s.next_block().await.is_none(), "the stream ended");
    seen_until(&f, "the stream dropped", |seen| seen.streams_dropped == 1).await;
}

#[tokio::test]
async fn streams_over_the_cap_are_503_until_one_closes() {
    let f = fixture_with(5_000, |c| {
        c.max_event_streams = 1;
        c.event_stream_keep_alive = Duration::from_millis(20);
    })
    .await;
    let mut first = Stream::open(f.gateway, ME, &f.token, &[]).await;
    first.next_event().await.expect("an event");
    let second = Stream::open(f.gateway, ME, &f.token, &[]).await;
    assert_eq!(second.status, 503);
    assert_eq!(second.header("retry-after"), Some("5"));
    assert_eq!(second.json().await["status"], 503);
    drop(first);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let again = Stream::open(f.gateway, ME, &f.token, &[]).await;
        if again.status == 200 {
            break;
        }
        assert_eq!(again.status, 503);
        assert!(
            Instant::now() < deadline,
            "the closed stream's place was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_stopping_gateway_ends_its_streams_and_stops() {
    let f = fixture(5_000).await;
    // The real server loop, which drains in-flight requests when it stops.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gateway = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(suite_gateway::serve_with_admin(
        f.config.clone(),
        listener,
        None,
        async {
            let _ = stopped.await;
        },
    ));
    let mut s = Stream::open(gateway, ME, &f.token, &[]).await;
    assert_eq!(s.status, 200);
    s.next_event().await.expect("first");
    s.next_event().await.expect("second");
    let _ = stop.send(());
    // A plain end (no error event): the client resumes elsewhere.
    assert!(s.next_event().await.is_none(), "the stream ended");
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("the gateway stops, not waiting for the stream")
        .expect("joined")
        .expect("cleanly");
    seen_until(&f, "the stream dropped", |seen| seen.streams_dropped == 1).await;
}
