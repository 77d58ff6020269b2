//! A minimal Server-Sent Events client on one HTTP/1.1 connection of its
//! own (closed when the stream is dropped): the gateway tests against a
//! scripted service and the whole-suite tests read event streams with it.

use crate::http::{body, open};
use http_body_util::BodyExt;
use std::{net::SocketAddr, time::Duration};

/// How long the answer's head, the next frame or the whole body may take
/// before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// One SSE block (lines up to a blank line) as (field, value) pairs; a
/// comment is the field "".
pub type Block = Vec<(String, String)>;

pub struct Stream {
    pub status: u16,
    pub headers: http::HeaderMap,
    body: hyper::body::Incoming,
    buffer: String,
    /// The connection: aborted (closed) when the stream is dropped.
    connection: tokio::task::JoinHandle<()>,
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Stream {
    /// `GET path` at `addr` asking for an event stream with `token` as the
    /// bearer, and the `extra` headers.
    pub async fn open(addr: SocketAddr, path: &str, token: &str, extra: &[(&str, &str)]) -> Self {
        let mut req = http::Request::get(path)
            .header("host", "localhost")
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {token}"));
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        let request = req.body(body("")).expect("request");
        let (resp, connection) = tokio::time::timeout(PATIENCE, open(addr, request))
            .await
            .expect("response headers in time");
        Self {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.into_body(),
            buffer: String::new(),
            connection,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The whole body as JSON (an answer that is not a stream: a problem).
    pub async fn json(mut self) -> serde_json::Value {
        let bytes = tokio::time::timeout(PATIENCE, (&mut self.body).collect())
            .await
            .expect("body in time")
            .expect("body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("a JSON body")
    }

    /// The next block, comments included; `None` once the body has ended.
    pub async fn next_block(&mut self) -> Option<Block> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                return Some(parse(&block));
            }
            let frame = tokio::time::timeout(PATIENCE, self.body.frame())
                .await
                .expect("the next event in time");
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buffer
                            .push_str(std::str::from_utf8(&data).expect("UTF-8 events"));
                    }
                }
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next block that is an event, not a keep-alive comment; `None`
    /// once the body has ended.
    pub async fn next_event(&mut self) -> Option<Block> {
        loop {
            let block = self.next_block().await?;
            if block.iter().any(|(field, _)| !field.is_empty()) {
                return Some(block);
            }
        }
    }
}

fn parse(block: &str) -> Block {
    block
        .lines()
        .filter(|l| !l.is_empty())
        .map(|line| {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            (field.to_owned(), value.to_owned())
        })
        .collect()
}

/// The value of a block's field `name`, if it has one.
pub fn field<'a>(block: &'a Block, name: &str) -> Option<&'a str> {
    block
        .iter()
        .find(|(f, _)| f == name)
        .map(|(_, v)| v.as_str())
}
