//! What mail costs registration (see BENCHMARKS.md, "Mail (issue 29)"):
//! registrations per second with the verification mail off and on (the
//! outbox row, the token row and the rendering, in the registration's
//! transaction), at the configured argon2id cost and at a token cost that
//! leaves the database and the outbox in view; and the time from a
//! registration's answer to its mail in an SMTP server (a sink of the
//! bench's own on loopback), p50 and p99.
//!
//! `cargo run --release -p suite-user --example mail_bench [-- <sqlite|postgres> <registrations> <concurrency>]`

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use suite_proto::user::{CreateUserRequest, user_service_client::UserServiceClient};
use suite_testkit::{Backend, SmtpSink, TestDb};
use tonic::transport::Channel;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let backend = match args.next().as_deref() {
        Some("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    println!("{backend:?}, {n} registrations, {concurrency} at once");
    for cheap_hash in [false, true] {
        for mail in [false, true] {
            run(backend, n, concurrency, mail, cheap_hash).await?;
        }
    }
    Ok(())
}

async fn run(
    backend: Backend,
    n: usize,
    concurrency: usize,
    mail: bool,
    cheap_hash: bool,
) -> Result<(), Box<dyn std::error::Error>> {
    let db = TestDb::create(backend, "mailbench")
        .await
        .ok_or("no database (is PostgreSQL running?)")?;
    let sink = SmtpSink::start().await;
    let mut config = suite_testkit::hermetic::<suite_user::Config>();
    config.database_url = db.url.parse()?;
    config.mail.smtp_url = Some(suite_user::mail::config::SmtpUrl(sink.url()));
    config.mail.email_verification = mail;
    config.password_min_score = 0;
    if cheap_hash {
        config.argon2_memory_kib = 64;
        config.argon2_iterations = 1;
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(suite_user::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))?.connect_lazy();
    // Ready once a registration goes through.
    let mut client = UserServiceClient::new(channel.clone());
    while client.create_user(request("warmup")).await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let answered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let mut client = UserServiceClient::new(channel.clone());
        let (answered, next) = (answered.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let name = format!("user{i}");
                if client.create_user(request(&name)).await.is_ok() {
                    answered
                        .lock()
                        .map(|mut a| a.insert(format!("{name}@example.com"), Instant::now()))
                        .ok();
                }
            }
        }));
    }
    for w in workers {
        w.await?;
    }
    let elapsed = started.elapsed();
    let done = answered.lock().map(|a| a.len()).unwrap_or(0);
    print!(
        "  argon2 {:<13} mail {:<3}: {:>6.0} registrations/s ({done} of {n})",
        if cheap_hash {
            "m=64 t=1"
        } else {
            "OWASP default"
        },
        if mail { "on" } else { "off" },
        done as f64 / elapsed.as_secs_f64()
    );
    if mail {
        let deadline = Instant::now() + Duration::from_secs(120);
        while sink.received().len() < done + 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let answered = answered.lock().map(|a| a.clone()).unwrap_or_default();
        let mut waits: Vec<Duration> = sink
            .received()
            .iter()
            .filter_map(|m| {
                let to = m.to.first()?;
                Some(m.at.saturating_duration_since(*answered.get(to)?))
            })
            .collect();
        waits.sort();
        let pick = |q: f64| {
            waits.get(((waits.len() as f64 * q) as usize).min(waits.len().saturating_sub(1)))
        };
        if let (Some(p50), Some(p99)) = (pick(0.5), pick(0.99)) {
            print!(
                "; {} mails, answer to mail in the sink p50 {:.1} ms, p99 {:.1} ms",
                waits.len(),
                p50.as_secs_f64() * 1000.0,
                p99.as_secs_f64() * 1000.0
            );
        }
    }
    println!();
    let _ = stop.send(());
    let _ = server.await;
    db.drop_database().await;
    Ok(())
}

fn request(name: &str) -> CreateUserRequest {
    CreateUserRequest {
        username: name.into(),
        email: format!("{name}@example.com"),
        password: "correct horse battery staple".into(),
        ..CreateUserRequest::default()
    }
}
