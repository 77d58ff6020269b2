//! The gRPC server's per-connection limits, over real sockets with a raw
//! HTTP/2 peer: the settings it advertises, a peer that stops answering
//! pings is closed, an old connection is asked to go away, a client that
//! never says the preface does not hold up the stop.
// The test binary's helpers fail their test loudly too (clippy.toml lets
// #[test] functions do so, and clippy 1.95 does not see these as tests).
#![allow(clippy::expect_used, clippy::panic)]

use std::{sync::Arc, time::Duration};
use suite_runtime::readiness::{Check, Readiness};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    time::Instant,
};

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;
/// Generous: the limits under test are a few seconds.
const DEADLINE: Duration = Duration::from_secs(30);

struct AlwaysReady;

impl Readiness for AlwaysReady {
    fn migrate(&self) -> Check<'_> {
        Box::pin(async { Ok(()) })
    }
    fn ping(&self) -> Check<'_> {
        Box::pin(async { Ok(()) })
    }
}

type Serving = tokio::task::JoinHandle<Result<(), suite_grpc::server::ServeError>>;

/// A server with the shared settings parsed from `flags`, as a binary
/// would parse them; dropping the sender stops it.
async fn server(flags: &[&str]) -> (std::net::SocketAddr, oneshot::Sender<()>) {
    let (addr, stop, _) = server_task(flags).await;
    (addr, stop)
}

async fn server_task(flags: &[&str]) -> (std::net::SocketAddr, oneshot::Sender<()>, Serving) {
    let args: suite_grpc::config::GrpcArgs =
        suite_grpc::config::parse_from(std::iter::once("test").chain(flags.iter().copied()))
            .expect("flags");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(suite_grpc::server::serve(
        tonic::service::Routes::default(),
        args.options("test", &[]),
        Arc::new(AlwaysReady),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    (addr, stop, task)
}

/// A peer that says the preface and empty SETTINGS, then never writes again
/// (no SETTINGS ack, no PING ack).
async fn mute_peer(addr: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(PREFACE).await.expect("preface");
    // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
    stream
        .write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0])
        .await
        .expect("settings");
    stream
}

/// The next frame (type, flags, payload), or `None` once the server has
/// closed the connection.
async fn frame(stream: &mut TcpStream) -> Option<(u8, u8, Vec<u8>)> {
    let mut head = [0u8; 9];
    stream.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.ok()?;
    Some((head[3], head[4], payload))
}

/// Reads frames until `stop` says so for one (`Some` of it) or the server
/// closes (`None`); panics past the deadline.
async fn read_until(
    stream: &mut TcpStream,
    mut stop: impl FnMut(u8, u8, &[u8]) -> bool,
) -> Option<(u8, Vec<u8>)> {
    let until = Instant::now() + DEADLINE;
    loop {
        let next = tokio::time::timeout_at(until, frame(stream))
            .await
            .unwrap_or_else(|_| panic!("the connection is still open after {DEADLINE:?}"));
        match next {
            Some((kind, flags, payload)) if stop(kind, flags, &payload) => {
                return Some((kind, payload));
            }
            Some(_) => continue,
            None => return None,
        }
    }
}

fn settings(payload: &[u8]) -> Vec<(u16, u32)> {
    payload
        .chunks_exact(6)
        .map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_advertises_its_stream_and_header_limits() {
    let (addr, _stop) = server(&[
        "--grpc-max-concurrent-streams",
        "7",
        "--grpc-max-header-list-bytes",
        "4096",
    ])
    .await;
    let mut peer = mute_peer(addr).await;
    // The server's own SETTINGS (not the ack of ours, flag 0x1).
    let (_, payload) = read_until(&mut peer, |kind, flags, _| {
        kind == SETTINGS && flags & 0x1 == 0
    })
    .await
    .expect("the server's SETTINGS");
    let advertised = settings(&payload);
    assert!(
        advertised.contains(&(SETTINGS_MAX_CONCURRENT_STREAMS, 7)),
        "{advertised:?}"
    );
    assert!(
        advertised.contains(&(SETTINGS_MAX_HEADER_LIST_SIZE, 4096)),
        "{advertised:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_answering_pings_is_closed() {
    let (addr, _stop) = server(&[
        "--grpc-http2-keepalive-interval-secs",
        "1",
        "--grpc-http2-keepalive-timeout-secs",
        "1",
        // Only the pings may end this connection.
        "--grpc-max-connection-age-secs",
        "0",
    ])
    .await;
    let mut peer = mute_peer(addr).await;
    // It reads everything (its socket never fills) but answers nothing.
    let ended = read_until(&mut peer, |_, _, _| false).await;
    assert!(ended.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_connection_is_asked_to_go_away() {
    let (addr, _stop) = server(&[
        "--grpc-max-connection-age-secs",
        "1",
        // Only the age may end this connection.
        "--grpc-http2-keepalive-interval-secs",
        "3600",
    ])
    .await;
    let mut peer = mute_peer(addr).await;
    let goaway = read_until(&mut peer, |kind, _, _| kind == GOAWAY).await;
    assert!(goaway.is_some(), "closed without a GOAWAY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_sends_the_preface_does_not_hold_up_the_stop() {
    let (addr, stop, task) = server_task(&["--grpc-timeout-secs", "1"]).await;
    // Connected, then silent: tonic's drain would wait for it forever.
    let silent = TcpStream::connect(addr).await.expect("connect");
    // Accepted in order: once a later client has been answered, the server
    // holds the silent connection too.
    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).expect("url");
    let channel = endpoint.connect().await.expect("a real client connects");
    let answered = suite_runtime::probe::check_health(channel, "", Duration::from_secs(5)).await;
    assert!(
        !matches!(&answered, Err(s) if s.code() == tonic::Code::Unavailable || s.code() == tonic::Code::DeadlineExceeded),
        "{answered:?}"
    );
    let _ = stop.send(());
    let stopped = tokio::time::timeout(DEADLINE, task).await;
    assert!(
        stopped.is_ok(),
        "still draining {DEADLINE:?} after the stop"
    );
    drop(silent);
}
