//! The event streams over REST, end to end: Server-Sent Events from the
//! user service's feed through the gateway, resumed with `Last-Event-ID`.

use crate::helpers::{Suite, spawn_suite};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::json;
use std::time::Duration;
use suite_testkit::Backend;

const PASSWORD: &str = "analytical engine 1843";

/// How long anything else may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// One event's fields, comments left out.
pub type Block = Vec<(String, String)>;

/// A minimal SSE client on one HTTP/1.1 connection (closed on drop).
pub struct Stream {
    pub status: u16,
    body: hyper::body::Incoming,
    buffer: String,
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.connection.abort();
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
        let tcp = tokio::net::TcpStream::connect(s.gateway)
            .await
            .expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
                .await
                .expect("handshake");
        let connection = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = http::Request::get(path)
            .header("host", "localhost")
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {token}"));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        let resp = tokio::time::timeout(
            PATIENCE,
            sender.send_request(req.body(Full::new(Bytes::new())).expect("request")),
        )
        .await
        .expect("response headers in time")
        .expect("response");
        Self {
            status: resp.status().as_u16(),
            body: resp.into_body(),
            buffer: String::new(),
            connection,
        }
    }

    /// The body of an answer that is not a stream (a problem's JSON).
    pub async fn problem(mut self) -> serde_json::Value {
        let mut bytes = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            while let Some(frame) = self.body.frame().await {
                if let Ok(data) = frame.expect("a frame").into_data() {
                    bytes.extend_from_slice(&data);
                }
            }
        })
        .await
        .expect("the body in time");
        serde_json::from_slice(&bytes).expect("a problem's JSON")
    }

    /// The next event's field `name`, if it has one.
    pub fn field(event: &Block, name: &str) -> Option<String> {
        event
            .iter()
            .find(|(f, _)| f == name)
            .map(|(_, v)| v.clone())
    }

    /// The next event (not a comment) within `within`.
    pub async fn next_event(&mut self, within: Duration) -> Block {
        tokio::time::timeout(within, async {
            loop {
                while let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let fields: Block = block
                        .lines()
                        .filter(|l| !l.is_empty() && !l.starts_with(':'))
                        .filter_map(|l| l.split_once(':'))
                        .map(|(f, v)| (f.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()))
                        .collect();
                    if !fields.is_empty() {
                        return fields;
                    }
                }
                let frame = self
                    .body
                    .frame()
                    .await
                    .expect("the stream goes on")
                    .expect("a frame");
                if let Ok(data) = frame.into_data() {
                    self.buffer
                        .push_str(std::str::from_utf8(&data).expect("UTF-8"));
                }
            }
        })
        .await
        .expect("an event in time")
    }

    /// The next `UserUpdated` (session events may come between).
    pub async fn next_update(&mut self, within: Duration) -> (String, serde_json::Value) {
        loop {
            let event = self.next_event(within).await;
            let field = |name: &str| {
                event
                    .iter()
                    .find(|(f, _)| f == name)
                    .map(|(_, v)| v.clone())
            };
            if field("event").as_deref() == Some("suite.user.v1.UserUpdated") {
                let data = serde_json::from_str(&field("data").expect("data")).expect("JSON");
                return (field("id").expect("an id"), data);
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
