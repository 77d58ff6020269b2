//! What Redis costs and buys, side by side in one run (see BENCHMARKS.md):
//! authenticated `GET /api/v1/users/{id}` through the gateway, the suite on
//! PostgreSQL, with (1) local rate buckets and no cache (the baseline),
//! (2) the buckets in Redis, (3) local buckets and the user cache in Redis;
//! each row's req/s, p50 and p99 and the CPU per request of the suite's
//! process (with the load generator), PostgreSQL and Redis. Then (4) both in
//! Redis, with a command budget so large that nothing is cut off: how long
//! Redis commands take as the gateway and the user service see them (the
//! client's histogram), which is what `REDIS_TIMEOUT_MS`'s default must
//! hold; and (5) both again with the default budget: the commands it cuts off.
//!
//! Needs PostgreSQL (`DATABASE_TEST_URL`, default postgres://postgres@127.0.0.1:5432/postgres)
//! and `redis-server` (Debian's; a server of its own is started).
//! `cargo run --release --example redis_bench [-- <seconds> <connections> [budget ms]]`

#[path = "common/cpu.rs"]
mod cpu;
#[path = "common/http.rs"]
mod http_client;

use http_client::{call, connect};

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};
use suite_testkit::RedisServer;
use suite_testkit::{Backend, TestDb};

type Error = Box<dyn std::error::Error + Send + Sync>;
struct Suite {
    gateway: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), suite::SuiteError>>,
    _dbs: (TestDb, TestDb),
    _dir: tempfile::TempDir,
}

async fn start(
    shared_limits: Option<&str>,
    cache: Option<&str>,
    budget_ms: u64,
) -> Result<Suite, Error> {
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
    user.redis.redis_timeout_ms = budget_ms;
    let mut gw = suite_gateway::Config::defaults();
    gw.redis.redis_url = shared_limits.map(str::to_owned);
    gw.redis.redis_timeout_ms = budget_ms;
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

/// The Redis client's counters now: (histogram buckets as (le seconds,
/// cumulative count), commands cut off by the budget, other failures).
fn redis_counts() -> (Vec<(f64, u64)>, u64, u64) {
    let text = suite_telemetry::metrics::metrics().encode();
    let (mut buckets, mut slow, mut other) = (Vec::new(), 0, 0);
    for line in text.lines() {
        let Some((name, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        if let Some(le) = name
            .strip_prefix("suite_redis_command_seconds_bucket{le=\"")
            .and_then(|r| r.strip_suffix("\"}"))
        {
            buckets.push((le.parse().unwrap_or(f64::INFINITY), value));
        } else if name == "suite_redis_command_failures_total{reason=\"slow\"}" {
            slow = value;
        } else if name.starts_with("suite_redis_command_failures_total{") {
            other += value;
        }
    }
    (buckets, slow, other)
}

/// The bucket bound (ms) under which a share `p` of the commands answered.
fn bucket_ms(buckets: &[(f64, u64)], p: f64) -> String {
    let total = buckets.last().map_or(0, |b| b.1);
    let wanted = (total as f64 * p).ceil() as u64;
    buckets
        .iter()
        .find(|(_, n)| *n >= wanted)
        .map_or("-".into(), |(le, _)| {
            if le.is_finite() {
                format!("≤ {}", le * 1e3)
            } else {
                "> 1000".into()
            }
        })
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
    let default_budget = suite_redis::RedisArgs::default().redis_timeout_ms;
    let budget: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(default_budget);
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
    let mut commands = Vec::new();
    for run in 1..=2 {
        for (limits, cache, budget_ms) in [
            (false, false, budget),
            (true, false, budget),
            (false, true, budget),
            // Nothing cut off: what the commands take.
            (true, true, 1000),
            (true, true, budget),
        ] {
            let s = start(
                limits.then_some(url.as_str()),
                cache.then_some(url.as_str()),
                budget_ms,
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
            let redis_before = redis_counts();
            let (ok, latencies) = load(
                s.gateway,
                &path,
                &token,
                connections,
                Duration::from_secs(seconds),
            )
            .await?;
            let after = cpu();
            let redis_after = redis_counts();
            if limits && cache {
                let buckets: Vec<(f64, u64)> = redis_after
                    .0
                    .iter()
                    .zip(redis_before.0.iter().chain(std::iter::repeat(&(0.0, 0))))
                    .map(|(a, b)| (a.0, a.1 - b.1))
                    .collect();
                commands.push(format!(
                    "| {run} | {budget_ms} | {} | {} / {} / {} / {} / {} | {} | {} |",
                    buckets.last().map_or(0, |b| b.1),
                    bucket_ms(&buckets, 0.5),
                    bucket_ms(&buckets, 0.99),
                    bucket_ms(&buckets, 0.999),
                    bucket_ms(&buckets, 0.9999),
                    bucket_ms(&buckets, 1.0),
                    redis_after.1 - redis_before.1,
                    redis_after.2 - redis_before.2,
                ));
            }
            let per = |i: usize| (after[i] - before[i]) / ok.max(1) as f64 * 1e6;
            println!(
                "| {run} | {} | {} | {:.0} | {:.2} / {:.2} | {:.0} / {:.0} / {:.0} |",
                if limits { "Redis" } else { "local" },
                match (limits && cache, cache) {
                    (true, _) => format!("Redis (budget {budget_ms} ms)"),
                    (false, true) => "Redis".into(),
                    (false, false) => "off".into(),
                },
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
    println!();
    println!(
        "Redis commands with both in Redis (gateway GCRA + user cache), as the callers saw them:"
    );
    println!(
        "| run | budget (ms) | answered | p50 / p99 / p99.9 / p99.99 / max (ms, histogram bound) | cut off (slow) | other failures |"
    );
    println!("|---|---|---|---|---|---|");
    for row in commands {
        println!("{row}");
    }
    Ok(())
}
