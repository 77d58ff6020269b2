//! The real server loop stopping under keep-alive traffic: no request that a
//! client wrote goes unanswered. HTTP/1.1 clients over raw sockets (so what
//! was written, and what came back, is exact) and an HTTP/2 client whose
//! socket notes the GOAWAY frame. Nothing here sleeps for a fixed time or
//! asserts on one: each step waits for what it expects, bounded.

use super::*;
use std::{
    io,
    pin::Pin,
    sync::atomic::{AtomicUsize, Ordering},
    task::{Context, Poll},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::TcpStream,
    sync::watch,
};

/// How long any expected thing may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Kept-alive HTTP/1.1 connections, each sending requests back to back.
const CLIENTS: usize = 8;

/// Answers each client has before the stop (so the stop lands mid-traffic).
const WARM_UP: usize = 5;

const REQUEST: &[u8] =
    b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n";

/// An HTTP/1.1 answer, read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// Header names lower-case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn closes(&self) -> bool {
        self.headers
            .iter()
            .any(|(name, value)| name == "connection" && value.eq_ignore_ascii_case("close"))
    }
}

/// Reads one answer (head, then a `Content-Length` or chunked body) from
/// `tcp`; `buffer` keeps what was read past it.
async fn read_answer(tcp: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<Answer> {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        fill(tcp, buffer).await?;
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    buffer.drain(..head_end);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| invalid(format!("no status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let value = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let body = if let Some(length) = value("content-length") {
        let length: usize = length
            .parse()
            .map_err(|_| invalid(format!("content-length {length:?}")))?;
        take(tcp, buffer, length).await?
    } else if value("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        let mut body = Vec::new();
        loop {
            let line = take_line(tcp, buffer).await?;
            let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid(format!("chunk size {line:?}")))?;
            body.extend(take(tcp, buffer, size).await?);
            take_line(tcp, buffer).await?;
            if size == 0 {
                break body;
            }
        }
    } else {
        return Err(invalid(format!("an answer without a length: {head:?}")));
    };
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Reads more into `buffer`; the end of the stream is an error here.
async fn fill(tcp: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0_u8; 4096];
    match tcp.read(&mut chunk).await? {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        n => {
            buffer.extend_from_slice(&chunk[..n]);
            Ok(())
        }
    }
}

async fn take(tcp: &mut TcpStream, buffer: &mut Vec<u8>, n: usize) -> io::Result<Vec<u8>> {
    while buffer.len() < n {
        fill(tcp, buffer).await?;
    }
    Ok(buffer.drain(..n).collect())
}

async fn take_line(tcp: &mut TcpStream, buffer: &mut Vec<u8>) -> io::Result<String> {
    loop {
        if let Some(at) = buffer.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buffer[..at]).into_owned();
            buffer.drain(..at + 2);
            return Ok(line);
        }
        fill(tcp, buffer).await?;
    }
}

/// How a kept-alive client's connection ended.
#[derive(Debug)]
struct Ending {
    answered: usize,
    /// Why a request written got no full answer (a reset, an early end), if one did.
    unanswered: Option<String>,
    /// The last answer said `Connection: close`.
    closed_by_answer: bool,
}

/// Sends `REQUEST` back to back on one connection until an answer closes
/// it (or a request goes unanswered), counting answers in `answered`.
async fn keep_alive_client(gateway: SocketAddr, answered: Arc<AtomicUsize>) -> Ending {
    let mut tcp = TcpStream::connect(gateway).await.expect("connect");
    let mut buffer = Vec::new();
    let mut ending = Ending {
        answered: 0,
        unanswered: None,
        closed_by_answer: false,
    };
    loop {
        let n = ending.answered + 1;
        if let Err(e) = tcp.write_all(REQUEST).await {
            ending.unanswered = Some(format!("request {n} could not be written: {e}"));
            return ending;
        }
        match read_answer(&mut tcp, &mut buffer).await {
            Ok(answer) => {
                ending.answered = n;
                answered.fetch_add(1, Ordering::Relaxed);
                if answer.status != 200 {
                    ending.unanswered = Some(format!("request {n}: {answer:?}"));
                    return ending;
                }
                if answer.closes() {
                    ending.closed_by_answer = true;
                    return ending;
                }
            }
            Err(e) => {
                ending.unanswered = Some(format!("request {n} written, no answer: {e}"));
                return ending;
            }
        }
    }
}

/// A client's socket that notes whether the server sent an HTTP/2 GOAWAY:
/// past the client's preface, all that comes from the server is frames
/// (a 9-byte header with a 24-bit length and the type, then the payload).
struct GoawayTap {
    tcp: TcpStream,
    header: Vec<u8>,
    /// Payload bytes of the current frame still to come.
    skip: usize,
    goaway: watch::Sender<bool>,
}

impl GoawayTap {
    fn scan(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.header.len()).min(bytes.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            // A whole frame header: length (24 bits), type, flags, stream id.
            if let [l0, l1, l2, kind, _, _, _, _, _] = self.header[..] {
                const GOAWAY: u8 = 0x7;
                if kind == GOAWAY {
                    self.goaway.send_replace(true);
                }
                self.skip = usize::from(l0) << 16 | usize::from(l1) << 8 | usize::from(l2);
                self.header.clear();
            }
        }
    }
}

impl AsyncRead for GoawayTap {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.tcp).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            let read = buf.filled()[before..].to_vec();
            this.scan(&read);
        }
        polled
    }
}

impl AsyncWrite for GoawayTap {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().tcp).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// One request on a fresh connection that the server may close after it.
async fn get_once(addr: SocketAddr, path: &str) -> Answer {
    let mut tcp = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("written");
    read_answer(&mut tcp, &mut Vec::new())
        .await
        .expect("an answer")
}

/// Waits (bounded) until `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    suite_testkit::eventually(what, PATIENCE, async || check()).await;
}

#[tokio::test]
async fn a_stopping_gateway_answers_every_request_on_kept_alive_connections() {
    let f = fixture_with(30_000, |c| {
        // Accepting stops at once; the grace outlasts the test, so that
        // nothing but the clients' own leaving can end it.
        c.shutdown_drain_delay = Duration::ZERO;
        c.shutdown_idle_grace = Duration::from_secs(60);
    })
    .await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gateway = listener.local_addr().expect("addr");
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin = admin_listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(suite_gateway::serve_with_admin(
        f.config.clone(),
        listener,
        Some(admin_listener),
        async {
            let _ = stopped.await;
        },
    ));

    // HTTP/2 (h2c): a request held in flight by the upstream across the stop.
    let (goaway_tx, mut goaway) = watch::channel(false);
    let tap = GoawayTap {
        tcp: TcpStream::connect(gateway).await.expect("connect"),
        header: Vec::new(),
        skip: 0,
        goaway: goaway_tx,
    };
    let (mut h2, h2_connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tap),
    )
    .await
    .expect("HTTP/2 handshake");
    let h2_connection = tokio::spawn(h2_connection);
    let held = h2.send_request(
        http::Request::get(format!("http://{gateway}/api/v1/users/held"))
            .header("authorization", format!("Bearer {}", f.token))
            .body(Full::new(Bytes::new()))
            .expect("request"),
    );
    let held = tokio::spawn(held);
    until("the HTTP/2 request reaches the upstream", || {
        f.seen.seen.lock().expect("lock").held_calls == 1
    })
    .await;

    // HTTP/1.1: clients sending back to back on kept-alive connections.
    let counters: Vec<_> = (0..CLIENTS)
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    let clients: Vec<_> = counters
        .iter()
        .map(|answered| tokio::spawn(keep_alive_client(gateway, answered.clone())))
        .collect();
    until("every client is under way", || {
        counters
            .iter()
            .all(|answered| answered.load(Ordering::Relaxed) >= WARM_UP)
    })
    .await;
    let ready = get_once(admin, "/readyz").await;
    let detail = String::from_utf8_lossy(&ready.body).into_owned();
    assert!(!detail.contains("stopping"), "{detail}");

    let _ = stop.send(());

    // Readiness says so at once, while requests are still in flight.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let ready = get_once(admin, "/readyz").await;
        let detail = String::from_utf8_lossy(&ready.body).into_owned();
        if detail.contains("not ready: stopping") {
            assert_eq!(ready.status, 503);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never said stopping: {detail}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Every request written got its full answer, the last one closing.
    for (i, client) in clients.into_iter().enumerate() {
        let ending = tokio::time::timeout(PATIENCE, client)
            .await
            .unwrap_or_else(|_| panic!("client {i} never stopped"))
            .expect("joined");
        assert_eq!(ending.unanswered, None, "client {i}: {ending:?}");
        assert!(ending.closed_by_answer, "client {i}: {ending:?}");
        assert!(ending.answered > WARM_UP, "client {i}: {ending:?}");
    }

    // The HTTP/2 connection was told to go away, and its request in flight
    // still completes.
    tokio::time::timeout(PATIENCE, goaway.wait_for(|seen| *seen))
        .await
        .expect("a GOAWAY on the HTTP/2 connection")
        .expect("the tap is alive");
    f.seen.release.notify_one();
    let held = tokio::time::timeout(PATIENCE, held)
        .await
        .expect("the held request's answer")
        .expect("joined")
        .expect("an answer, not a reset");
    assert_eq!(held.status(), 200);
    let body = held.into_body().collect().await.expect("body").to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["username"], "ada");
    tokio::time::timeout(PATIENCE, h2_connection)
        .await
        .expect("the HTTP/2 connection ends")
        .expect("joined")
        .expect("cleanly");

    // With every client gone, the server ends (long before the grace would).
    tokio::time::timeout(PATIENCE, server)
        .await
        .expect("the gateway stops")
        .expect("joined")
        .expect("cleanly");
}
