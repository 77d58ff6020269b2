//! One rate budget for every gateway: two replicas on one Redis admit what
//! one would; with Redis gone each keeps serving on its own buckets (no
//! 5xx), and once Redis answers again the budget is shared again.

use crate::helpers::{Backend, send_with, spawn_suite_on};
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};
use suite_testkit::RedisServer;

const BURST: u32 = 20;
const PATIENCE: Duration = Duration::from_secs(10);

/// The limits of both replicas: a burst of 20, then one a minute (nothing
/// refills during the test); clients named by `X-Forwarded-For` from the
/// loopback proxy.
fn limits(config: &mut suite_gateway::Config, redis: &str) {
    config.redis.redis_url = Some(redis.to_owned());
    // Generous: the test machine's load must not make Redis "slow".
    config.redis.redis_timeout_ms = 500;
    config.rate_limit_burst = BURST;
    config.rate_limit_per_second = 1;
    config.trusted_proxies = vec![[127, 0, 0, 1].into()];
}

/// One request of `client` (its address as the proxy tells it) to `gateway`:
/// the status (a protected route without a token: 401 when admitted).
async fn request(gateway: SocketAddr, client: &str) -> u16 {
    send_with(
        gateway,
        "GET",
        "/api/v1/users/me",
        None,
        None,
        &[("x-forwarded-for", client)],
    )
    .await
    .expect("request")
    .status
}

/// `n` requests of `client`, alternating between the gateways: how many
/// were admitted, and every status seen.
async fn alternating(gateways: &[SocketAddr], client: &str, n: usize) -> (usize, Vec<u16>) {
    let mut statuses = Vec::new();
    for i in 0..n {
        statuses.push(request(gateways[i % gateways.len()], client).await);
    }
    let admitted = statuses.iter().filter(|s| **s != 429).count();
    (admitted, statuses)
}

/// Waits until `gateway` counts `probe`'s requests in Redis again.
async fn counted_in_redis(redis: &RedisServer, gateway: SocketAddr, probe: &str) {
    let client = redis::Client::open(redis.url()).expect("url");
    let deadline = Instant::now() + PATIENCE;
    loop {
        request(gateway, probe).await;
        let found: Option<String> = match client.get_multiplexed_async_connection().await {
            Ok(mut c) => redis::cmd("GET")
                .arg(format!("suite:rl:general:{probe}"))
                .query_async(&mut c)
                .await
                .unwrap_or(None),
            Err(_) => None,
        };
        if found.is_some() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{gateway} never went back to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_redis_share_one_budget_and_fall_back_when_it_is_gone() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let Some(s) = spawn_suite_on(Backend::Sqlite, None, |c| limits(c, &url)).await else {
        return;
    };
    let other = crate::helpers::another_gateway(&s, |c| limits(c, &url)).await;
    let gateways = [s.gateway, other];

    // Shared: alternating between the two, one client gets one burst.
    let (admitted, statuses) = alternating(&gateways, "198.51.100.1", 40).await;
    assert!(
        (BURST as usize..=BURST as usize + 1).contains(&admitted),
        "admitted {admitted} of 40 (one budget is {BURST}): {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );

    // Redis gone: both keep serving on their own buckets, and nothing is a 5xx.
    redis.stop();
    let (admitted, statuses) = alternating(&gateways, "198.51.100.2", 60).await;
    assert!(
        statuses.iter().all(|s| *s < 500),
        "a 5xx without Redis: {statuses:?}"
    );
    assert!(
        admitted >= BURST as usize,
        "the local buckets admit at least one burst: {admitted}"
    );

    // Redis back (empty: it kept nothing): shared again.
    redis.start_again();
    for (i, g) in gateways.iter().enumerate() {
        counted_in_redis(&redis, *g, &format!("203.0.113.{i}")).await;
    }
    let (admitted, statuses) = alternating(&gateways, "198.51.100.3", 40).await;
    assert!(
        (BURST as usize..=BURST as usize + 1).contains(&admitted),
        "admitted {admitted} of 40 after Redis returned: {statuses:?}"
    );
    s.stop().await;
}

/// Script calls Redis has run (`INFO commandstats`: EVALSHA and EVAL).
async fn script_calls(redis: &RedisServer) -> u64 {
    let client = redis::Client::open(redis.url()).expect("url");
    let mut c = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .expect("info");
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// With a burst large enough to lease (a sixteenth of 128: 8 at most), a
/// busy client takes admissions several at a time: fewer script calls than
/// requests, and still never more than one budget between both replicas
/// (at most a lapsed lease per replica less).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_client_leases_admissions_and_still_gets_one_budget() {
    const BIG: u32 = 128;
    let redis = RedisServer::start();
    let url = redis.url();
    let big = |c: &mut suite_gateway::Config| {
        limits(c, &url);
        c.rate_limit_burst = BIG;
    };
    let Some(s) = spawn_suite_on(Backend::Sqlite, None, big).await else {
        return;
    };
    let other = crate::helpers::another_gateway(&s, big).await;
    let gateways = [s.gateway, other];
    let before = script_calls(&redis).await;
    let started = Instant::now();
    let (admitted, statuses) = alternating(&gateways, "198.51.100.9", 300).await;
    // The bucket refills one a second meanwhile.
    let refilled = started.elapsed().as_secs() as usize + 1;
    let calls = script_calls(&redis).await - before;
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    // Never more than the budget; a lease that lapsed unspent (a request
    // slower than 50 ms on a busy machine) was counted all the same, so
    // fewer may be admitted, but never most of it lost.
    assert!(
        admitted <= BIG as usize + refilled && admitted >= BIG as usize / 2,
        "admitted {admitted} of 300 (one budget is {BIG}, leases at most 8)"
    );
    assert!(
        calls < 300,
        "{calls} script calls for 300 requests: nothing was leased"
    );
    s.stop().await;
}
