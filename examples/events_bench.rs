//! The cost of the events, side by side in one run (see BENCHMARKS.md):
//! 1. registration (`CreateUser`) and update (`UpdateUser`) throughput of
//!    the user service on PostgreSQL with its events written to the outbox
//!    and relayed to NATS JetStream, against the same without events (the
//!    baseline: `EventsArgs::record` off), alternating, each on a fresh
//!    database;
//! 2. event delivery latency under the update load: from the change's time
//!    to a JetStream subscriber holding the event;
//! 3. the verifier's cost per call of the revocation check: a remembered
//!    token verified with no revocation set, an empty one, and one holding
//!    20,000 recent revocations.
//!
//! Needs PostgreSQL (`DATABASE_TEST_URL`, default postgres://postgres@127.0.0.1:5432/postgres)
//! and `nats-server` (Debian's; a server of its own is started).
//! `cargo run --release --example events_bench [-- <seconds> <update concurrency>]`

#[path = "common/cpu.rs"]
mod cpu;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};
use suite_proto::user::{
    CreateUserRequest, UpdateUserRequest, User, user_service_client::UserServiceClient,
};
use suite_testkit::NatsServer;
use suite_testkit::{Backend, TestDb};
use suite_tokens::{Audience, Claims, SigningKey, jwks_of};
use tonic::transport::Channel;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn claims(sub: &str, roles: &[&str]) -> Claims {
    let now = jsonwebtoken_now();
    Claims {
        iss: "suite-auth".into(),
        aud: Audience::One("suite".into()),
        sub: sub.into(),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: uuid::Uuid::now_v7().to_string(),
        sid: Some(uuid::Uuid::now_v7().to_string()),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        client_id: None,
        scope: None,
        amr: Vec::new(),
        auth_time: None,
        pat: false,
    }
}

fn jsonwebtoken_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct Service {
    client: UserServiceClient<Channel>,
    admin: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), suite_user::StartError>>,
    _db: TestDb,
}

async fn start(nats: &NatsServer, record: bool) -> Result<Service, Error> {
    let db = TestDb::create(Backend::Postgres, "bench")
        .await
        .ok_or("PostgreSQL is needed")?;
    let key = SigningKey::generate("bench")?;
    let mut config = suite_user::Config::defaults();
    config.database_url = db.url.parse()?;
    config.keys.jwks = Some(suite_tokens::jwks::JwksSource::Static(jwks_of(
        std::slice::from_ref(&key),
    )?));
    config.events.nats_url = Some(nats.url());
    config.events.record = record;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(suite_user::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let client =
        UserServiceClient::new(Channel::from_shared(format!("http://{addr}"))?.connect_lazy());
    let admin = key.sign(&claims(
        &uuid::Uuid::now_v7().to_string(),
        &["user", "admin"],
    ))?;
    // Serving once migrated.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut c = client.clone();
        let probe = c
            .create_user(CreateUserRequest {
                username: "probe".into(),
                email: "probe@example.com".into(),
                password: "a long enough passphrase".into(),
                ..Default::default()
            })
            .await;
        if probe.is_ok() {
            break;
        }
        if Instant::now() > deadline {
            return Err("the user service never served".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Service {
        client,
        admin,
        stop,
        task,
        _db: db,
    })
}

impl Service {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn authed<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(v) = format!("Bearer {token}").parse() {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

/// Registrations per second over `seconds`, `concurrency` at once.
async fn registrations(s: &Service, seconds: u64, concurrency: usize, tag: &str) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (mut c, done, tag) = (s.client.clone(), done.clone(), tag.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < end {
                let name = format!("r{tag}{w}x{i}");
                let ok = c
                    .create_user(CreateUserRequest {
                        username: name.clone(),
                        email: format!("{name}@example.com"),
                        password: "a long enough passphrase".into(),
                        ..Default::default()
                    })
                    .await
                    .is_ok();
                if ok {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    done.load(Ordering::Relaxed) as f64 / seconds as f64
}

/// Updates per second over `seconds`: `concurrency` users, each updated by
/// its own caller one update after another.
async fn updates(s: &Service, seconds: u64, concurrency: usize) -> Result<f64, Error> {
    let mut users = Vec::new();
    let mut c = s.client.clone();
    for i in 0..concurrency {
        let user = c
            .create_user(CreateUserRequest {
                username: format!("upd{i}"),
                email: format!("upd{i}@example.com"),
                password: "a long enough passphrase".into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .user
            .ok_or("no user")?;
        users.push(user);
    }
    let done = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for user in users {
        let (mut c, done, admin) = (s.client.clone(), done.clone(), s.admin.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < end {
                let req = UpdateUserRequest {
                    user: Some(User {
                        id: user.id.clone(),
                        display_name: format!("change {i}"),
                        ..User::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["display_name".into()],
                    }),
                };
                if c.update_user(authed(req, &admin)).await.is_ok() {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / seconds as f64)
}

/// Receives the user stream's events from now on and records, for each,
/// the time from its change to its arrival here, until `stop`.
fn latencies(
    bus: suite_events::Bus,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Duration>> {
    tokio::spawn(async move {
        let filter = suite_events::Filter {
            streams: vec![suite_events::Stream::User],
            ..Default::default()
        };
        let mut seen = Vec::new();
        let Ok(mut sub) = bus.subscribe(filter, suite_events::Start::New).await else {
            return seen;
        };
        while !stop.load(Ordering::Relaxed) {
            match tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
                Ok(Some(Ok(suite_events::Item::Event { event, .. }))) => {
                    let lag = chrono::Utc::now() - event.time;
                    seen.push(lag.to_std().unwrap_or_default());
                }
                Ok(Some(Ok(suite_events::Item::CaughtUp))) | Err(_) => {}
                Ok(_) => break,
            }
        }
        seen
    })
}

/// CPU seconds so far of this process, PostgreSQL and the NATS server.
fn cpu(nats_port: u16) -> [f64; 3] {
    let me = std::env::args().next().unwrap_or_default();
    [
        cpu::seconds(&me),
        cpu::seconds("postgres"),
        cpu::seconds(&format!("-p {nats_port}")),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// ns per verification of one remembered token.
async fn verify_cost(
    revocations: Option<suite_tokens::Revocations>,
    rounds: u32,
) -> Result<f64, Error> {
    let key = SigningKey::generate("bench")?;
    let keys = suite_tokens::jwks::KeyCache::new(
        Some(suite_tokens::jwks::JwksSource::Static(jwks_of(
            std::slice::from_ref(&key),
        )?)),
        Duration::from_secs(5),
    );
    keys.load().await?;
    let rules = suite_tokens::TokenRules {
        issuer: "suite-auth".into(),
        audiences: vec!["suite".into()],
        leeway_secs: 30,
        admins_need_second_factor: false,
    };
    let mut verifier = suite_tokens::Verifier::new(keys, rules);
    if let Some(r) = revocations {
        verifier = verifier.with_revocations(r);
    }
    let token = key.sign(&claims(&uuid::Uuid::now_v7().to_string(), &["user"]))?;
    verifier.caller(&token).await?;
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(verifier.caller(std::hint::black_box(&token)).await?);
    }
    Ok(start.elapsed().as_nanos() as f64 / f64::from(rounds))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let nats = NatsServer::start();
    let bus = suite_events::EventsArgs {
        nats_url: Some(nats.url()),
        ..suite_events::EventsArgs::default()
    }
    .bus("bench")
    .await?;

    println!(
        "| run | events | registrations/s (4 at once) | updates/s ({concurrency} at once) | CPU µs per update: suite / PostgreSQL / NATS | delivery p50 / p99 (ms) | events received |"
    );
    println!("|---|---|---|---|---|---|---|");
    let modes = [
        (1, true, true),
        (1, false, true),
        (1, true, false),
        (2, true, true),
        (2, false, true),
        (2, true, false),
    ];
    for (run, record, watched) in modes {
        let s = start(&nats, record).await?;
        let reg = registrations(&s, seconds / 2, 4, &format!("{run}{record}{watched}")).await;
        let stop = Arc::new(AtomicBool::new(false));
        let watch = watched.then(|| latencies(bus.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = cpu(nats.addr.port());
        let upd = updates(&s, seconds, concurrency).await?;
        let after = cpu(nats.addr.port());
        let per_update = |i: usize| (after[i] - before[i]) / (upd * seconds as f64) * 1e6;
        // What is still on its way arrives, then the watch stops.
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.store(true, Ordering::Relaxed);
        let mut lags = match watch {
            Some(w) => w.await?,
            None => Vec::new(),
        };
        lags.sort();
        let (p50, p99) = (percentile(&lags, 0.5), percentile(&lags, 0.99));
        let mode = match (record, watched) {
            (true, true) => "on, a subscriber watching",
            (true, false) => "on, nobody subscribed",
            (false, _) => "off (baseline)",
        };
        let delivery = if record && watched {
            format!("{p50:.1} / {p99:.1}")
        } else {
            "–".into()
        };
        println!(
            "| {run} | {mode} | {reg:.1} | {upd:.0} | {:.0} / {:.0} / {:.0} | {delivery} | {} |",
            per_update(0),
            per_update(1),
            per_update(2),
            lags.len()
        );
        s.stop().await;
    }

    println!();
    println!("| verifier (a remembered token) | ns per call |");
    println!("|---|---|");
    let rounds = 2_000_000;
    for round in 0..2 {
        let none = verify_cost(None, rounds).await?;
        let empty = verify_cost(
            Some(suite_tokens::Revocations::new(Duration::from_secs(930))),
            rounds,
        )
        .await?;
        let full = suite_tokens::Revocations::new(Duration::from_secs(930));
        let now = suite_tokens::revocations::now_millis();
        for _ in 0..10_000 {
            full.revoke_session(uuid::Uuid::now_v7(), now);
            full.revoke_user_before(uuid::Uuid::now_v7(), now);
        }
        let held = verify_cost(Some(full), rounds).await?;
        println!("| run {} · no revocation set | {none:.0} |", round + 1);
        println!("| run {} · empty set | {empty:.0} |", round + 1);
        println!(
            "| run {} · 20,000 revocations held | {held:.0} |",
            round + 1
        );
    }
    Ok(())
}
