//! An SMTP server of the test's own (a sink): it takes every message and
//! keeps it for the test to read, and can be stopped and started again on
//! the same port (a relay that is down, then back), or told to answer
//! "try again later" (451) to the next messages.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-stuffing undone.
    pub data: String,
    /// When the sink accepted it.
    pub at: std::time::Instant,
}

impl Received {
    /// The plain-text part with quoted-printable soft line breaks and
    /// `=XX` escapes undone (enough to find a link in it).
    pub fn text(&self) -> String {
        quoted_printable(&self.data)
    }

    /// The first `http(s)://…` link in the message whose path contains `path`.
    pub fn link(&self, path: &str) -> Option<String> {
        let text = self.text();
        text.split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
            .find(|w| (w.starts_with("http://") || w.starts_with("https://")) && w.contains(path))
            .map(str::to_owned)
    }

    /// The value of header `name` (the first one).
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.data
            .split("\r\n\r\n")
            .next()?
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_owned())
    }
}

/// Quoted-printable (RFC 2045 §6.7): soft line breaks (`=` at a line's
/// end) joined, `=XX` decoded.
pub fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
#[test]
fn quoted_printable_soft_breaks_are_joined() {
    assert_eq!(
        quoted_printable("http://x/account/verify-email?token=3Dab=\r\ncd =3D=C3=A9\r\n"),
        "http://x/account/verify-email?token=abcd =é\r\n"
    );
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Messages still to be answered 451 (then accepted again).
    refuse_next: usize,
}

/// The sink; dropping it stops it.
pub struct SmtpSink {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: Option<JoinHandle<()>>,
}

impl SmtpSink {
    /// A sink on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
        let addr = listener.local_addr().expect("its address");
        let state = Arc::new(Mutex::new(State::default()));
        let task = Some(tokio::spawn(serve(listener, state.clone())));
        Self { addr, state, task }
    }

    /// `smtp://127.0.0.1:<port>`, for `SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Stops listening (connections in progress end too).
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port, keeping what it received.
    pub async fn restart(&mut self) {
        self.stop();
        let listener = loop {
            // The old socket may take a moment to be released.
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        self.task = Some(tokio::spawn(serve(listener, self.state.clone())));
    }

    /// Answers the next `n` messages with 451 (a temporary failure).
    pub fn refuse_next(&self, n: usize) {
        self.state.lock().expect("sink state").refuse_next = n;
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("sink state").received.clone()
    }

    /// The messages to `address`.
    pub fn to(&self, address: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve(listener: TcpListener, state: Arc<Mutex<State>>) {
    let mut sessions = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        sessions.spawn(session(stream, state.clone()));
    }
}

/// One SMTP session: enough of RFC 5321 for lettre.
async fn session(stream: TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut from = String::new();
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if command.starts_with("EHLO") {
            b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if command.starts_with("HELO") || command.starts_with("NOOP") {
            b"250 ok\r\n"
        } else if command.starts_with("MAIL FROM:") {
            from = angle(&line);
            to.clear();
            b"250 ok\r\n"
        } else if command.starts_with("RCPT TO:") {
            to.push(angle(&line));
            b"250 ok\r\n"
        } else if command == "RSET" {
            from.clear();
            to.clear();
            b"250 ok\r\n"
        } else if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            let refused = {
                let mut s = state.lock().expect("sink state");
                if s.refuse_next > 0 {
                    s.refuse_next -= 1;
                    true
                } else {
                    s.received.push(Received {
                        from: from.clone(),
                        to: to.clone(),
                        data,
                        at: std::time::Instant::now(),
                    });
                    false
                }
            };
            if refused {
                b"451 try again later\r\n"
            } else {
                b"250 queued\r\n"
            }
        } else if command == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
}

/// The address between `<` and `>` in an SMTP command.
fn angle(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_owned())
        .unwrap_or_default()
}

/// A directory of its own under the system's temporary directory, for a
/// test service's development mailbox (never the source tree). Kept after
/// the test, as the files a failing test leaves are worth reading.
pub fn temp_mail_dir() -> std::path::PathBuf {
    tempfile::Builder::new()
        .prefix("suite-test-mail-")
        .tempdir()
        .expect("a temporary directory")
        .keep()
}
