//! Redis going away and coming back, under traffic: two gateways' limits
//! (two `RateLimits` on one Redis, as two replicas would have) fall back to
//! their own buckets while it is gone and share one budget again within
//! 2 s of its return, however long it was away. Each test has a
//! `redis-server` of its own, stopped (killed, as a crash would) and started
//! again on the same port, empty.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::{
    net::IpAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};
use suite_gateway::{
    contract::routes::RateClass,
    policy::rate_limit::{RateLimitSettings, RateLimits},
};
use suite_redis::RedisArgs;
use suite_testkit::{RedisServer, SlowLink};

/// The strict bucket's burst; it refills one a minute, so nothing refills
/// while a round counts.
const BURST: u32 = 5;
/// How soon after Redis is back its buckets must be shared again (issue 25).
const BACK_WITHIN: Duration = Duration::from_secs(2);
/// For what does not depend on Redis's return (the first connection; the
/// replicas noticing that Redis is gone).
const PATIENCE: Duration = Duration::from_secs(10);

/// A replica's limits on Redis behind `link`, with the default command budget.
fn replica(link: &SlowLink) -> Arc<RateLimits> {
    let args = RedisArgs {
        redis_url: Some(link.url()),
        ..RedisArgs::default()
    };
    let client = args.connect().expect("a URL").expect("configured");
    RateLimits::with_redis(
        &RateLimitSettings {
            per_second: 1000,
            burst: 1000,
            sensitive_per_minute: 1,
            sensitive_burst: BURST,
            trusted_proxies: vec![],
        },
        Some(client),
    )
}

/// A fresh client address for every round, so every round starts on full
/// buckets (local and shared alike).
fn fresh_client() -> IpAddr {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8])
}

/// One client's 2 × BURST strict requests, alternating between the
/// replicas: how many were admitted. One shared budget admits BURST; two
/// local ones admit 2 × BURST.
async fn round(replicas: &[Arc<RateLimits>; 2]) -> u32 {
    let client = fresh_client();
    let mut admitted = 0;
    for i in 0..2 * BURST as usize {
        if replicas[i % 2].check(client, RateClass::Auth).await.is_ok() {
            admitted += 1;
        }
    }
    admitted
}

/// Rounds until one admits what `wanted` says, within `patience`: the
/// rounds' admissions (for the failure message).
async fn until(
    replicas: &[Arc<RateLimits>; 2],
    wanted: impl Fn(u32) -> bool,
    patience: Duration,
    what: &str,
) -> Vec<u32> {
    let deadline = Instant::now() + patience;
    let mut seen = Vec::new();
    loop {
        let admitted = round(replicas).await;
        seen.push(admitted);
        if wanted(admitted) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {patience:?}; admitted per round of {} (burst {BURST}): {seen:?}",
            2 * BURST
        );
        tokio::task::yield_now().await;
    }
}

/// Requests that keep coming (general bucket, other clients) on both
/// replicas, Redis up or not, until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
}

impl Traffic {
    fn start(replicas: &[Arc<RateLimits>; 2]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..4)
            .map(|i| {
                let (limits, stop) = (replicas[i % 2].clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let _ = limits.check(fresh_client(), RateClass::General).await;
                        n += 1;
                        // A steady stream, not a spin: the two cores are shared.
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    n
                })
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the traffic: how many requests it made.
    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let mut n = 0;
        for t in self.tasks {
            n += t.await.expect("traffic task");
        }
        n
    }
}

/// Redis gone for `outage` (at least until both replicas answer from their
/// own buckets) under traffic, then back: shared within [`BACK_WITHIN`].
/// `vanish`: its connections are left open and silent (its host gone, as
/// after a partition or a lost node) rather than closed by a crash.
async fn redis_returns_after(outage: Duration, vanish: bool) {
    let mut redis = RedisServer::start();
    // The replicas reach Redis over a link the test can freeze.
    let link = SlowLink::start(redis.addr, Duration::ZERO).await;
    let replicas = [replica(&link), replica(&link)];
    let traffic = Traffic::start(&replicas);
    until(&replicas, |a| a == BURST, PATIENCE, "shared at first").await;

    if vanish {
        link.freeze();
    }
    redis.stop();
    let gone = Instant::now();
    // Both on their own buckets (each admits its burst), for as long as the
    // outage lasts; the traffic keeps asking meanwhile.
    until(
        &replicas,
        |a| a == 2 * BURST,
        PATIENCE,
        "local once Redis is gone",
    )
    .await;
    while gone.elapsed() < outage {
        assert_eq!(
            round(&replicas).await,
            2 * BURST,
            "local while Redis is gone"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Back, empty (no scripts, no buckets), on the same port.
    redis.start_again();
    let seen = until(
        &replicas,
        |a| a == BURST,
        BACK_WITHIN,
        "shared again after Redis returned",
    )
    .await;
    // And it stays shared (one round could have caught one replica local).
    for _ in 0..3 {
        let admitted = round(&replicas).await;
        assert_eq!(
            admitted, BURST,
            "shared again, then not: {seen:?}, {admitted}"
        );
    }
    assert!(traffic.stop().await > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_shared_again_within_two_seconds_of_a_brief_outage() {
    redis_returns_after(Duration::ZERO, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_shared_again_after_redis_vanished_without_closing_its_connections() {
    redis_returns_after(Duration::ZERO, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_are_shared_again_within_two_seconds_of_a_long_outage() {
    // Longer than any reconnection backoff (the client's probes are at
    // most MAX_PROBE_DELAY apart; the connection manager's used to be 2 s).
    redis_returns_after(Duration::from_secs(5), false).await;
}
