//! What Redis costs and buys, side by side in one run (see BENCHMARKS.md):
//! authenticated `GET /api/v1/users/{id}` through the gateway, the suite on
//! PostgreSQL, with (1) local rate buckets and no cache (the baseline),
//! (2) the buckets in Redis, (3) local buckets and the user cache in Redis;
//! each row's req/s, p50 and p99 and the CPU per request of the suite's
//! process (with the load generator), PostgreSQL and Redis.
//!
//! Needs PostgreSQL (`DATABASE_TEST_URL`, default postgres://postgres@127.0.0.1:5432/postgres)
//! and `redis-server` (Debian's; a server of its own is started).
//! `cargo run --release --example redis_bench [-- <seconds> <connections>]`

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/http.rs"]
mod http_client;

use http_client::{call, connect};

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};
use suite_db::testing::{Backend, TestDb};
use suite_redis::testing::RedisServer;

type Error = Box<dyn std::error::Error + Send + Sync>;
struct Suite {
    gateway: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), suite::SuiteError>>,
    _dbs: (TestDb, TestDb),
    _dir: tempfile::TempDir,
}

async fn start(shared_limits: Option<&str>, cache: Option<&str>) -> Result<Suite, Error> {
    let user_db = TestDb::create(Backend::Postgres, "rbuser")
        .await
        .ok_or("PostgreSQL is needed")?;
    let auth_db = TestDb::create(Backend::Postgres, "rbauth")
        .await
        .ok_or("PostgreSQL is needed")?;
    let dir = tempfile::tempdir()?;
    let config = suite::SuiteConfig {
        user_database_url: Some(user_db.database_url()),
        auth_database_url: Some(auth_db.database_url()),
        ..suite::SuiteConfig::on_free_ports(dir.path().to_owned())
    };
    let listeners = suite::Listeners::bind(&config).await?;
    let gateway = listeners.gateway.local_addr()?;
    let mut user = suite_user::Config::defaults();
    user.redis.redis_url = cache.map(str::to_owned);
    let mut gw = suite_gateway::Config::defaults();
    gw.redis.redis_url = shared_limits.map(str::to_owned);
    // Limits that never refuse: their cost is measured, not their effect.
    gw.rate_limit_per_second = 1_000_000;
    gw.rate_limit_burst = 1_000_000;
    gw.auth_rate_limit_burst = 1_000_000;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(suite::run(
        config,
        user,
        suite_auth::Config::defaults(),
        gw,
        listeners,
        async {
            let _ = stopped.await;
        },
    ));
    Ok(Suite {
        gateway,
        stop,
        task,
        _dbs: (user_db, auth_db),
        _dir: dir,
    })
}

/// Registers and logs in a user: (id, access token).
async fn user(gateway: SocketAddr) -> Result<(String, String), Error> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sender = loop {
        if let Ok(s) = connect(gateway).await {
            break s;
        }
        if Instant::now() > deadline {
            return Err("the gateway never listened".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let body =
        r#"{"username":"bench","email":"bench@example.com","password":"a long enough passphrase"}"#;
    let created = loop {
        let (status, created) = call(
            &mut sender,
            "POST",
            "/api/v1/users",
            None,
            Some(body.into()),
        )
        .await?;
        if status == 201 {
            break created;
        }
        if Instant::now() > deadline {
            return Err(format!("registration: {status}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = serde_json::from_slice::<serde_json::Value>(&created)?["id"]
        .as_str()
        .ok_or("no id")?
        .to_owned();
    let login = r#"{"login":"bench","password":"a long enough passphrase"}"#;
    let (_, tokens) = call(
        &mut sender,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(login.into()),
    )
    .await?;
    let token = serde_json::from_slice::<serde_json::Value>(&tokens)?["accessToken"]
        .as_str()
        .ok_or("no token")?
        .to_owned();
    Ok((id, token))
}

/// `connections` clients GETting `path` for `window`: OKs and latencies.
async fn load(
    addr: SocketAddr,
    path: &str,
    token: &str,
    connections: usize,
    window: Duration,
) -> Result<(u64, Vec<Duration>), Error> {
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (path, token) = (path.to_owned(), token.to_owned());
        let mut sender = connect(addr).await?;
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut latencies) = (0u64, Vec::new());
            while Instant::now() < deadline {
                let start = Instant::now();
                if let Ok((200, _)) = call(&mut sender, "GET", &path, Some(&token), None).await {
                    ok += 1;
                    latencies.push(start.elapsed());
                }
            }
            (ok, latencies)
        }));
    }
    let (mut ok, mut latencies) = (0, Vec::new());
    for t in tasks {
        let (o, l) = t.await?;
        ok += o;
        latencies.extend(l);
    }
    latencies.sort();
    Ok((ok, latencies))
}

fn ms(sorted: &[Duration], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1e3)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let redis = RedisServer::start();
    let url = redis.url();
    let me = std::env::args().next().unwrap_or_default();
    // Redis rewrites its process title to `redis-server <addr>`; before that
    // its command line holds `--port <port>`.
    let redis_cpu = {
        let (title, args) = (
            redis.addr.to_string(),
            format!("--port {}", redis.addr.port()),
        );
        move || cpu::seconds(&title) + cpu::seconds(&args)
    };

    println!(
        "| run | rate buckets | user cache | req/s | p50 / p99 (ms) | CPU µs per GET: suite + load / PostgreSQL / Redis |"
    );
    println!("|---|---|---|---|---|---|");
    for run in 1..=2 {
        for (limits, cache) in [(false, false), (true, false), (false, true)] {
            let s = start(
                limits.then_some(url.as_str()),
                cache.then_some(url.as_str()),
            )
            .await?;
            let (id, token) = user(s.gateway).await?;
            let path = format!("/api/v1/users/{id}");
            // Warm: connections, statement caches, the cache entry.
            load(
                s.gateway,
                &path,
                &token,
                connections,
                Duration::from_secs(1),
            )
            .await?;
            let cpu = || [cpu::seconds(&me), cpu::seconds("postgres"), redis_cpu()];
            let before = cpu();
            let (ok, latencies) = load(
                s.gateway,
                &path,
                &token,
                connections,
                Duration::from_secs(seconds),
            )
            .await?;
            let after = cpu();
            let per = |i: usize| (after[i] - before[i]) / ok.max(1) as f64 * 1e6;
            println!(
                "| {run} | {} | {} | {:.0} | {:.2} / {:.2} | {:.0} / {:.0} / {:.0} |",
                if limits { "Redis" } else { "local" },
                if cache { "Redis" } else { "off" },
                ok as f64 / seconds as f64,
                ms(&latencies, 0.5),
                ms(&latencies, 0.99),
                per(0),
                per(1),
                per(2)
            );
            let _ = s.stop.send(());
            let _ = s.task.await;
        }
    }
    Ok(())
}
