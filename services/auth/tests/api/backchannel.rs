//! Back-channel logout: a session that ends (sign-out, deletion of the
//! user) sends each of its clients a logout token, retried while a client
//! refuses, given up after the attempts allowed, never lost and never owed
//! after it is settled. The receivers are small HTTP servers of the test's
//! own; the tokens are checked as a relying party would, against the JWKS.

use crate::{
    clients::{confidential, register_client},
    forget::count,
    helpers::{Backend, Suite, spawn_suite_on_one_bus},
    oauth_steps::*,
};
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};
use suite_proto::auth::{
    EndSessionRequest, Tokens, authorization_step::Step, end_session_response,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
    sync::watch,
};

const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Revoked sessions of clients whose logout token is still owed.
const OWED: &str = "SELECT COUNT(*) FROM sessions \
     WHERE client_id IS NOT NULL AND revoked_at IS NOT NULL AND NOT logout_sent";

/// A client's back-channel logout endpoint: answers 503 to the first
/// `refusals` requests (`usize::MAX`: to all), 200 after; keeps every
/// logout token it accepted and counts every request.
struct Receiver {
    addr: SocketAddr,
    accepted: watch::Receiver<Vec<String>>,
    requests: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(refusals: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, accepted) = watch::channel(Vec::new());
        let requests = Arc::new(AtomicUsize::new(0));
        let seen = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let body = read_request(&mut conn).await;
                let n = seen.fetch_add(1, Ordering::SeqCst);
                let status = if n < refusals {
                    "503 Service Unavailable"
                } else {
                    let token = body
                        .strip_prefix("logout_token=")
                        .expect("a form with logout_token")
                        .to_owned();
                    tx.send_modify(|v| v.push(token));
                    "200 OK"
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                // The sender may have given up on a slow answer: not ours to fail.
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        Self {
            addr,
            accepted,
            requests,
        }
    }

    fn uri(&self) -> String {
        format!("http://{}/backchannel-logout", self.addr)
    }

    /// The tokens accepted, once there are `n`.
    async fn tokens(&self, n: usize) -> Vec<String> {
        let mut rx = self.accepted.clone();
        tokio::time::timeout(Duration::from_secs(20), rx.wait_for(|v| v.len() >= n))
            .await
            .unwrap_or_else(|_| panic!("{n} logout tokens at {}", self.addr))
            .expect("receiver running")
            .clone()
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// One HTTP/1.1 request's body (the headers read up to content-length).
async fn read_request(conn: &mut tokio::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = conn.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the request ended early");
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
        assert!(head.starts_with("post /backchannel-logout "), "{head}");
        assert!(
            head.contains("content-type: application/x-www-form-urlencoded"),
            "{head}"
        );
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("content-length");
        while buf.len() < end + 4 + length {
            let n = conn.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "the body ended early");
            buf.extend_from_slice(&chunk[..n]);
        }
        return String::from_utf8(buf[end + 4..end + 4 + length].to_vec()).expect("utf-8");
    }
}

/// A logout token's claims, checked as OpenID Connect Back-Channel Logout
/// 1.0 section 2.6 tells a receiver to.
async fn verify_logout_token(s: &Suite, token: &str, client_id: &str) -> serde_json::Value {
    let claims = verify_jwt(s, token, "logout+jwt", client_id).await;
    assert!(claims["events"][EVENT].is_object(), "{claims}");
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    assert!(matches!((iat, exp), (Some(i), Some(e)) if e > i && e - i <= 120));
    claims
}

/// Another client's tokens for the browser session `session` (single
/// sign-on: consent only).
async fn sso_tokens(s: &Suite, session: &str, client_id: &str, secret: &str) -> Tokens {
    let (verifier, challenge) = pkce();
    let (step, _) = authorize(s, params(client_id, &challenge), session).await;
    let step = match step {
        Step::Consent(c) => consent(s, &c.request_id, &c.csrf_token, BINDING, session).await,
        other => other,
    };
    let code = redirect_of(step)["code"].clone();
    exchange(s, client_id, secret, &code, &verifier)
        .await
        .expect("tokens")
}

async fn ending_sessions_send_logout_tokens_to_their_clients(backend: Backend) {
    let Some(s) = spawn_suite_on_one_bus(backend, |auth| {
        auth.backchannel_logout_retry = Duration::from_millis(20);
        auth.backchannel_logout_attempts = 3;
    })
    .await
    else {
        return;
    };
    let steady = Receiver::start(0).await;
    let flaky = Receiver::start(2).await;
    let down = Receiver::start(usize::MAX).await;
    let mut clients = Vec::new();
    for (name, receiver) in [
        ("Steady", Some(&steady)),
        ("Flaky", Some(&flaky)),
        ("Down", Some(&down)),
        ("Deaf", None),
    ] {
        let mut client = confidential(name);
        client.backchannel_logout_uri = receiver.map(Receiver::uri).unwrap_or_default();
        clients.push(register_client(&s, client).await);
    }
    let user = s.register("lena").await;

    // One browser signs in to all four clients.
    let (steady_id, steady_secret) = &clients[0];
    let (verifier, challenge) = pkce();
    let (code, session) = code_via_pages(&s, steady_id, &challenge, "lena").await;
    let first = exchange(&s, steady_id, steady_secret, &code, &verifier)
        .await
        .expect("tokens");
    for (id, secret) in &clients[1..] {
        sso_tokens(&s, &session, id, secret).await;
    }
    let sid = verify_id_token(&s, &first.id_token, steady_id).await["sid"].clone();
    assert!(sid.is_string());
    assert_eq!(count(&s.auth_db, OWED).await, 0, "nothing owed while live");

    // Signing out of that browser ends the four sessions.
    let ended = s
        .oauth()
        .end_session(EndSessionRequest {
            id_token_hint: first.id_token.clone(),
            browser_session: session.clone(),
            ..EndSessionRequest::default()
        })
        .await
        .expect("end session")
        .into_inner();
    assert!(matches!(
        ended.result,
        Some(end_session_response::Result::SignedOut(_))
    ));
    for (receiver, (client_id, _)) in [(&steady, &clients[0]), (&flaky, &clients[1])] {
        let tokens = receiver.tokens(1).await;
        let claims = verify_logout_token(&s, &tokens[0], client_id).await;
        assert_eq!(claims["sub"], user.id.as_str());
        assert_eq!(claims["sid"], sid, "the ID token's sid");
    }
    // Settled: the flaky client after two refusals, the down one after the
    // three attempts allowed, the one without a URI at once.
    suite_testkit::eventually(
        "every logout token settled",
        Duration::from_secs(20),
        async || count(&s.auth_db, OWED).await == 0,
    )
    .await;
    assert_eq!((steady.requests(), flaky.requests()), (1, 3));
    assert_eq!(
        down.requests(),
        3,
        "given up after BACKCHANNEL_LOGOUT_ATTEMPTS"
    );

    // A session that ends another way (the user deleted) is told too, with
    // its own browser session's id.
    let (code, _) = code_via_pages(&s, steady_id, &challenge, "lena").await;
    let second = exchange(&s, steady_id, steady_secret, &code, &verifier)
        .await
        .expect("tokens");
    let second_sid = verify_id_token(&s, &second.id_token, steady_id).await["sid"].clone();
    assert_ne!(second_sid, sid);
    s.delete_self("lena", &user.id).await;
    let tokens = steady.tokens(2).await;
    let claims = verify_logout_token(&s, &tokens[1], steady_id).await;
    assert_eq!(claims["sub"], user.id.as_str());
    assert_eq!(claims["sid"], second_sid);
    assert_ne!(
        claims["jti"],
        verify_logout_token(&s, &tokens[0], steady_id).await["jti"]
    );
    s.stop().await;
}

suite_testkit::on_both_databases!(suite_testkit::db::backend;
    ending_sessions_send_logout_tokens_to_their_clients,
);
