//! The event streams over REST, end to end: Server-Sent Events from the
//! user service's feed through the gateway, resumed with `Last-Event-ID`.

use crate::helpers::{Suite, spawn_suite};
use serde_json::json;
use std::time::Duration;
use suite_testkit::{
    Backend,
    sse::{self, Block, PATIENCE, field},
};

const PASSWORD: &str = "analytical engine 1843";

/// The gateway's event stream (closed on drop), its events read within a
/// deadline and expected to go on.
pub struct Stream(sse::Stream);

impl std::ops::Deref for Stream {
    type Target = sse::Stream;

    fn deref(&self) -> &sse::Stream {
        &self.0
    }
}

impl Stream {
    pub async fn open(s: &Suite, path: &str, token: &str, last_event_id: Option<&str>) -> Self {
        Self::open_with(s, path, token, last_event_id, &[]).await
    }

    /// [`Stream::open`] with more request headers.
    pub async fn open_with(
        s: &Suite,
        path: &str,
        token: &str,
        last_event_id: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Self {
        let mut headers: Vec<(&str, &str)> = last_event_id
            .map(|id| ("last-event-id", id))
            .into_iter()
            .collect();
        headers.extend_from_slice(extra);
        Self(sse::Stream::open(s.gateway, path, token, &headers).await)
    }

    /// The body of an answer that is not a stream (a problem's JSON).
    pub async fn problem(self) -> serde_json::Value {
        self.0.json().await
    }

    /// The event's field `name`, if it has one.
    pub fn field(event: &Block, name: &str) -> Option<String> {
        field(event, name).map(str::to_owned)
    }

    /// The next event (not a comment) within `within`.
    pub async fn next_event(&mut self, within: Duration) -> Block {
        tokio::time::timeout(within, self.0.next_event())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
    }

    /// The next `UserUpdated` (session events may come between).
    pub async fn next_update(&mut self, within: Duration) -> (String, serde_json::Value) {
        loop {
            let event = self.next_event(within).await;
            if field(&event, "event") == Some("suite.user.v1.UserUpdated") {
                let data =
                    serde_json::from_str(field(&event, "data").expect("data")).expect("JSON");
                return (field(&event, "id").expect("an id").to_owned(), data);
            }
        }
    }
}

async fn patch_display_name(s: &Suite, token: &str, name: &str) {
    let r = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(token),
            Some(json!({ "displayName": name })),
        )
        .await
        .expect("patch");
    assert_eq!(r.status, 200, "{}", r.json);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_sees_their_own_changes_as_events_and_resumes_after_the_last_one() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    crate::helpers::register_as(&s, "ada", "ada@example.com", PASSWORD).await;
    let ada = crate::helpers::login(&s, "ada", PASSWORD).await;
    let at = ada["accessToken"].as_str().expect("token").to_owned();

    // Somebody else, whose changes are not ada's to see.
    crate::helpers::register_as(&s, "bob", "bob@example.com", PASSWORD).await;
    let bob = crate::helpers::login(&s, "bob", PASSWORD).await;
    let bob = bob["accessToken"].as_str().expect("token").to_owned();

    let mut stream = Stream::open(&s, "/api/v1/users/me/events", &at, None).await;
    assert_eq!(stream.status, 200);
    // Bob's change comes first on the stream of user events: the next event
    // ada sees must be her own all the same.
    patch_display_name(&s, &bob, "Bob").await;
    let changed = std::time::Instant::now();
    patch_display_name(&s, &at, "Countess").await;
    // (The wait is a deadline, not a measure: the latency is benchmarked.)
    let (first, data) = stream.next_update(PATIENCE).await;
    eprintln!(
        "ada's change reached her stream after {:?}",
        changed.elapsed()
    );
    assert_eq!(data["id"], first);
    assert_eq!(data["userUpdated"]["user"]["displayName"], "Countess");
    drop(stream);

    // A change while away, then back with the last id seen: it, and not the first again.
    patch_display_name(&s, &at, "Ada").await;
    let mut resumed = Stream::open(&s, "/api/v1/users/me/events", &at, Some(&first)).await;
    assert_eq!(resumed.status, 200);
    let (second, data) = resumed.next_update(PATIENCE).await;
    assert_ne!(second, first);
    assert_eq!(data["userUpdated"]["user"]["displayName"], "Ada");

    // The service refuses what is not its to serve, before any event.
    let bad = s
        .get("/api/v1/users/me/events?lastEventId=nope", Some(&at))
        .await
        .expect("reply");
    assert_eq!(bad.status, 400, "{}", bad.json);
    let admins = s.get("/api/v1/events", Some(&at)).await.expect("reply");
    assert_eq!(admins.status, 403, "{}", admins.json);

    // Stopping with a stream open does not wait for it.
    tokio::time::timeout(PATIENCE, s.stop())
        .await
        .expect("the suite stops with a stream open");
    drop(resumed);
}
