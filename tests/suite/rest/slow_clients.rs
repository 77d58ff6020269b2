//! Clients too slow to send their headers or their body.

use crate::helpers::spawn_suite_with;
use std::time::{Duration, Instant};
use suite_testkit::Backend;

/// Writes `first`, then `drip` every 100 ms, until the server answers or
/// closes (returning what it sent) or `deadline` passes (`None`).
async fn trickle(
    gateway: std::net::SocketAddr,
    first: &str,
    drip: &[u8],
    deadline: Duration,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(gateway)
        .await
        .expect("connect");
    stream.write_all(first.as_bytes()).await.expect("write");
    let until = Instant::now() + deadline;
    let mut buf = vec![0u8; 4096];
    while Instant::now() < until {
        tokio::select! {
            read = stream.read(&mut buf) => {
                return Some(match read {
                    Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
                    Err(_) => String::new(),
                });
            }
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                if stream.write_all(drip).await.is_err() {
                    return Some(String::new());
                }
            }
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_too_slow_to_send_its_headers_is_closed() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |c| {
        c.header_read_timeout = Duration::from_millis(300);
    })
    .await
    else {
        return;
    };
    // One header line every 100 ms, never the blank line that ends the head.
    let answer = trickle(
        s.gateway,
        "GET /api/health HTTP/1.1\r\nhost: localhost\r\n",
        b"x-slow: 1\r\n",
        Duration::from_secs(20),
    )
    .await;
    assert!(answer.is_some(), "still reading the head after 20 s");
    assert!(!answer.unwrap_or_default().contains("200 OK"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_trickled_past_the_budget_is_408() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |c| {
        c.request_timeout = Duration::from_millis(500);
    })
    .await
    else {
        return;
    };
    // 10 000 bytes announced, one sent every 100 ms.
    let answer = trickle(
        s.gateway,
        "POST /api/v1/users HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 10000\r\n\r\n{",
        b" ",
        Duration::from_secs(20),
    )
    .await
    .expect("no answer after 20 s");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    s.stop().await;
}
