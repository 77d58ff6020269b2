//! HEAD wherever GET is, read off the wire (a client library would hide a
//! body sent by mistake): the same status and headers as the GET, a
//! `Content-Length` where the GET has one, and nothing after the head.
//! Nothing here sleeps for a fixed time: each wait is for what it expects,
//! bounded.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long any expected thing may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// An answer as it came over the wire.
struct Raw {
    status: u16,
    /// Lower-case names, in order.
    headers: Vec<(String, String)>,
    /// What followed the head (read to the end unless `head_only`).
    rest: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The headers a HEAD must repeat: all but the date and the framing
    /// (a HEAD's answer has no body to frame).
    fn comparable(&self) -> Vec<(String, String)> {
        let mut headers: Vec<_> = self
            .headers
            .iter()
            .filter(|(n, _)| n != "date" && n != "transfer-encoding")
            .cloned()
            .collect();
        headers.sort();
        headers
    }
}

/// One request with the fixture's token on a connection of its own,
/// closed after the answer: the head, and all that follows it (or nothing
/// more, with `head_only`, for a stream that would not end).
async fn raw(
    f: &Fixture,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    head_only: bool,
) -> Raw {
    raw_as(f, Some(&f.token), method, path, extra, head_only).await
}

/// [`raw`] with `token` as the bearer, or with only the `extra` headers.
async fn raw_as(
    f: &Fixture,
    token: Option<&str>,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    head_only: bool,
) -> Raw {
    let bearer = token.map(|token| format!("Bearer {token}"));
    let mut extra = extra.to_vec();
    if let Some(bearer) = &bearer {
        extra.insert(0, ("authorization", bearer.as_str()));
    }
    let mut tcp = tokio::net::TcpStream::connect(f.gateway)
        .await
        .expect("connect");
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
    for (name, value) in extra {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    tcp.write_all(request.as_bytes()).await.expect("send");
    let mut received = Vec::new();
    let read = async {
        let mut buffer = [0u8; 16 * 1024];
        loop {
            let n = tcp.read(&mut buffer).await.expect("read");
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..n]);
            if head_only && received.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    };
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the answer in time (and, for a HEAD, the connection closed after it)");
    let end = received
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete head");
    let head = std::str::from_utf8(&received[..end]).expect("an ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Raw {
        status,
        headers,
        rest: received[end + 4..].to_vec(),
    }
}

/// GET and HEAD of `path` with `extra` headers: the HEAD answers as the
/// GET, without a body, and states the GET's length when the GET does.
async fn head_matches_get(f: &Fixture, path: &str, extra: &[(&str, &str)]) -> (Raw, Raw) {
    let get = raw(f, "GET", path, extra, false).await;
    let head = raw(f, "HEAD", path, extra, false).await;
    assert_eq!(head.status, get.status, "{path} {extra:?}");
    assert_eq!(head.comparable(), get.comparable(), "{path} {extra:?}");
    assert!(
        head.rest.is_empty(),
        "{path}: a HEAD answer with a body: {:?}",
        String::from_utf8_lossy(&head.rest)
    );
    if let Some(length) = get.header("content-length") {
        assert_eq!(length.parse::<usize>().ok(), Some(get.rest.len()), "{path}");
    }
    (get, head)
}

#[tokio::test]
async fn head_on_a_transcoded_route_answers_as_its_get_without_a_body() {
    let f = fixture(5_000).await;
    let id = [("x-request-id", "req-head")];
    // A success, with the service's returned metadata.
    let (get, head) = head_matches_get(&f, "/api/v1/users/u1", &id).await;
    assert_eq!(get.status, 200);
    assert!(
        head.header("content-length").is_some(),
        "{:?}",
        head.headers
    );
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert_eq!(head.header("content-language"), Some("en"));
    // Compressed as the GET is (the length is then the GET's too: none).
    let gzip = [id[0], ("accept-encoding", "gzip")];
    head_matches_get(&f, "/api/v1/users/u1", &gzip).await;
    // Problems: the service's, and the gateway's own.
    for (path, status) in [
        ("/api/v1/users/code-5", 404),
        ("/api/v1/users/code-7", 403),
        ("/api/v1/users", 501),
        ("/api/v1/nothing-here", 404),
    ] {
        let (_, head) = head_matches_get(&f, path, &id).await;
        assert_eq!(head.status, status, "{path}");
        assert_eq!(
            head.header("content-type"),
            Some("application/problem+json"),
            "{path}"
        );
        assert!(head.header("content-length").is_some(), "{path}");
    }
    // A HEAD is a read: it is retried as its GET is.
    let before = f.seen.seen.lock().expect("lock").get_calls;
    let (_, head) = head_matches_get(&f, "/api/v1/users/code-14", &id).await;
    assert_eq!(head.status, 503);
    assert_eq!(f.seen.seen.lock().expect("lock").get_calls, before + 6);
    // Without a token, the 401 of its GET.
    let get = raw_as(&f, None, "GET", "/api/v1/users/u1", &id, false).await;
    let head = raw_as(&f, None, "HEAD", "/api/v1/users/u1", &id, false).await;
    assert_eq!((get.status, head.status), (401, 401));
    assert_eq!(head.comparable(), get.comparable());
    assert_eq!(head.header("www-authenticate"), Some("Bearer"));
    assert!(head.rest.is_empty());
}

#[tokio::test]
async fn head_on_the_gateways_own_routes_answers_as_their_get() {
    let f = fixture(5_000).await;
    for path in [
        "/api/health",
        "/api/openapi.json",
        "/api/docs",
        "/api/docs/docs.css",
        "/api/docs/swagger-ui-bundle.js",
    ] {
        let (get, head) = head_matches_get(&f, path, &[]).await;
        assert_eq!(get.status, 200, "{path}");
        assert!(head.header("content-length").is_some(), "{path}");
        head_matches_get(&f, path, &[("accept-encoding", "gzip")]).await;
    }
}

#[tokio::test]
async fn a_405_allows_head_wherever_it_allows_get() {
    let f = fixture(5_000).await;
    for (method, path, allow) in [
        ("PUT", "/api/v1/users/u1", "GET, HEAD, PATCH, DELETE"),
        ("PUT", "/api/v1/users", "POST, GET, HEAD"),
        ("POST", "/api/v1/users/me/events", "GET, HEAD"),
        ("HEAD", "/api/v1/auth/login", "POST"),
        ("HEAD", "/api/v1/users/u1:changePassword", "POST"),
    ] {
        let r = raw(&f, method, path, &[], false).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    // The gateway's own routes, as axum answers them.
    for path in ["/api/health", "/api/openapi.json", "/api/docs"] {
        let r = raw(&f, "POST", path, &[], false).await;
        assert_eq!(r.status, 405, "{path}");
        assert_eq!(r.header("allow"), Some("GET,HEAD"), "{path}");
    }
}

/// A HEAD on an event stream gets its GET's status and headers, and no
/// stream: the service is asked (so its refusal shows) and the call is
/// dropped once its head has arrived.
#[tokio::test]
async fn head_on_an_event_stream_answers_its_head_and_opens_no_stream() {
    let f = fixture(5_000).await;
    let path = "/api/v1/users/me/events";
    let id = [("x-request-id", "req-head-events")];
    let head = raw(&f, "HEAD", path, &id, false).await;
    assert_eq!(head.status, 200);
    assert!(
        head.rest.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&head.rest)
    );
    assert_eq!(head.header("content-type"), Some("text/event-stream"));
    assert_eq!(head.header("content-length"), None);
    // The service was asked once, and its stream is gone.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (calls, dropped) = {
            let seen = f.seen.seen.lock().expect("lock");
            (seen.last_event_ids.len(), seen.streams_dropped)
        };
        assert_eq!(calls, 1);
        if dropped == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the upstream stream stayed open");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The GET's head, stream aside.
    let get = raw(&f, "GET", path, &id, true).await;
    assert_eq!(get.status, 200);
    assert_eq!(head.comparable(), get.comparable());

    // The service's refusal, as the GET gets it.
    let (_, refused) = head_matches_get(&f, "/api/v1/events", &[("x-request-id", "r")]).await;
    assert_eq!(refused.status, 403);
}

/// HEAD adds no operations to the document: it lists GET, which implies it.
#[tokio::test]
async fn the_openapi_document_lists_get_and_never_head() {
    let f = fixture(5_000).await;
    let doc = f.get("/api/openapi.json", &[]).await;
    assert_eq!(doc.status, 200);
    let paths = doc.json["paths"].as_object().expect("paths");
    let mut gets = 0;
    for (path, item) in paths {
        let item = item.as_object().expect("a path item");
        assert!(!item.contains_key("head"), "{path}");
        gets += usize::from(item.contains_key("get"));
    }
    assert!(gets >= 6, "{gets} GET operations");
}
