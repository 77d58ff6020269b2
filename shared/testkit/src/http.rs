//! HTTP/1.1 on a fresh connection of its own: one request and its whole
//! answer ([`send`]), or the answer's head with the body left to stream
//! ([`open`], for Server-Sent Events). The gateway tests and the whole-suite
//! tests call the gateway this way.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::net::SocketAddr;

/// A request's body: empty, or the bytes given.
pub type Body = Full<Bytes>;

/// What one request got back, the body whole.
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A body from bytes or text.
pub fn body(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
}

/// Sends `request` to `addr` on a fresh connection and reads the whole
/// answer.
pub async fn send(addr: SocketAddr, request: http::Request<Body>) -> Answer {
    let (response, _connection) = open(addr, request).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Answer {
        status,
        headers,
        body,
    }
}

/// Sends `request` to `addr` on a fresh connection and returns the answer
/// as soon as its head has come, with the task that drives the connection
/// (abort it to close the connection).
pub async fn open(
    addr: SocketAddr,
    request: http::Request<Body>,
) -> (
    http::Response<hyper::body::Incoming>,
    tokio::task::JoinHandle<()>,
) {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    let connection = tokio::spawn(async move {
        let _ = conn.await;
    });
    let response = sender.send_request(request).await.expect("response");
    (response, connection)
}
