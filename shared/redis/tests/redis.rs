//! The scripts against a real Redis (a `redis-server` of each test's own).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::Duration;
use suite_redis::{Gcra, GcraTake, Redis, RedisArgs};
use suite_testkit::{RedisServer, SlowLink};

fn client(server: &RedisServer, timeout_ms: u64) -> Redis {
    RedisArgs {
        redis_url: Some(server.url()),
        redis_connect_timeout_ms: 250,
        redis_timeout_ms: timeout_ms,
        redis_key_prefix: "test:".into(),
    }
    .connect()
    .expect("a URL")
    .expect("configured")
}

#[tokio::test]
async fn a_gcra_bucket_admits_its_burst_then_says_how_long_to_wait() {
    let server = RedisServer::start();
    let redis = client(&server, 1000);
    let interval = Duration::from_secs(10);
    let mut remaining = Vec::new();
    for _ in 0..3 {
        match redis.gcra("b", interval, 3).await.expect("redis") {
            Gcra::Allowed { remaining: r } => remaining.push(r),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(remaining, [2, 1, 0]);
    match redis.gcra("b", interval, 3).await.expect("redis") {
        Gcra::Limited { retry_after } => {
            assert!(
                retry_after > Duration::from_secs(9) && retry_after <= interval,
                "{retry_after:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    // Another key is another bucket.
    assert!(matches!(
        redis.gcra("c", interval, 3).await,
        Ok(Gcra::Allowed { remaining: 2 })
    ));
}

#[tokio::test]
async fn several_admissions_at_once_take_what_the_bucket_holds_and_no_more() {
    let server = RedisServer::start();
    let redis = client(&server, 1000);
    let interval = Duration::from_secs(10);
    // A burst of 5: 3 of 3 asked, then 2 of 4 asked (all it holds), then none.
    assert_eq!(
        redis.gcra_take("t", interval, 5, 3).await.expect("redis"),
        GcraTake::Granted {
            granted: 3,
            remaining: 2
        }
    );
    assert_eq!(
        redis.gcra_take("t", interval, 5, 4).await.expect("redis"),
        GcraTake::Granted {
            granted: 2,
            remaining: 0
        }
    );
    match redis.gcra_take("t", interval, 5, 2).await.expect("redis") {
        GcraTake::Limited { retry_after } => assert!(
            retry_after > Duration::from_secs(9) && retry_after <= interval,
            "{retry_after:?}"
        ),
        other => panic!("{other:?}"),
    }
    // Single requests see what was taken: the bucket is one.
    assert!(matches!(
        redis.gcra("t", interval, 5).await,
        Ok(Gcra::Limited { .. })
    ));
}

#[tokio::test]
async fn a_reader_holding_an_old_row_cannot_store_it_after_a_write() {
    let server = RedisServer::start();
    let redis = client(&server, 1000);
    let ttl = Duration::from_secs(60);
    assert!(redis.cache_put("u", 1, b"one", ttl).await.expect("put"));
    assert_eq!(
        redis.cache_get("u").await.expect("get").as_deref(),
        Some(&b"one"[..])
    );
    // A write of version 2 is committed and invalidates.
    redis
        .cache_invalidate("u", 2, ttl)
        .await
        .expect("invalidate");
    assert_eq!(redis.cache_get("u").await.expect("get"), None);
    // The slow reader that fetched version 1 before the write comes back.
    assert!(!redis.cache_put("u", 1, b"one", ttl).await.expect("put"));
    assert_eq!(redis.cache_get("u").await.expect("get"), None);
    // A reader of version 2 may store it; an older one cannot replace it.
    assert!(redis.cache_put("u", 2, b"two", ttl).await.expect("put"));
    assert!(!redis.cache_put("u", 1, b"one", ttl).await.expect("put"));
    assert_eq!(
        redis.cache_get("u").await.expect("get").as_deref(),
        Some(&b"two"[..])
    );
    // A value with the separator inside survives.
    assert!(redis.cache_put("v", 1, b"a:b", ttl).await.expect("put"));
    assert_eq!(
        redis.cache_get("v").await.expect("get").as_deref(),
        Some(&b"a:b"[..])
    );
}

#[tokio::test]
async fn a_redis_that_is_gone_fails_fast_and_is_found_again() {
    let mut server = RedisServer::start();
    let redis = client(&server, 50);
    redis.ping().await.expect("up");
    server.stop();
    assert!(redis.ping().await.is_err());
    assert!(redis.gcra("b", Duration::from_secs(1), 1).await.is_err());
    server.start_again();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while redis.ping().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "never reconnected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The default command budget, as a client of `url` would have it.
fn default_client(url: String) -> (Redis, Duration) {
    let args = RedisArgs {
        redis_url: Some(url),
        ..RedisArgs::default()
    };
    let budget = Duration::from_millis(args.redis_timeout_ms);
    (args.connect().expect("a URL").expect("configured"), budget)
}

/// Polls `gcra` on a fresh key until Redis admits it, within `patience`.
async fn gcra_answers_within(redis: &Redis, patience: Duration, what: &str) {
    let deadline = std::time::Instant::now() + patience;
    let mut errors = Vec::new();
    for n in 0u64.. {
        match redis
            .gcra(&format!("p{n}"), Duration::from_secs(1), 5)
            .await
        {
            Ok(Gcra::Allowed { .. }) => return,
            Ok(other) => panic!("a fresh bucket refused: {other:?}"),
            Err(e) => errors.push(e.to_string()),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: no answer within {patience:?}; {} errors, the last: {:?}",
            errors.len(),
            errors.last()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A Redis that restarted keeps no scripts (nothing on disk), and on a
/// loaded machine a round trip takes a good part of the budget: the scripts
/// must be back before the budget, not only after a caller's EVALSHA, NOSCRIPT,
/// SCRIPT LOAD (the client's probe loads them after any failure).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_gets_its_scripts_back_though_round_trips_are_slow() {
    let mut server = RedisServer::start();
    let budget = Duration::from_millis(RedisArgs::default().redis_timeout_ms);
    // Each reply 40 % of the budget late: one round trip fits, three do not.
    let link = SlowLink::start(server.addr, budget * 2 / 5).await;
    let (redis, _) = default_client(link.url());
    gcra_answers_within(&redis, Duration::from_secs(10), "at first").await;

    server.stop();
    assert!(redis.gcra("down", Duration::from_secs(1), 5).await.is_err());
    server.start_again();
    gcra_answers_within(&redis, Duration::from_secs(2), "after the restart").await;
}

/// A connection whose peer vanished without closing it (a Redis host gone,
/// a partition) answers nothing, and nothing on it ever fails as a broken
/// connection: the client must notice on its own and connect anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_stopped_answering_is_replaced() {
    let server = RedisServer::start();
    let link = SlowLink::start(server.addr, Duration::ZERO).await;
    let (redis, _) = default_client(link.url());
    gcra_answers_within(&redis, Duration::from_secs(10), "at first").await;

    link.freeze();
    assert!(
        redis
            .gcra("frozen", Duration::from_secs(1), 5)
            .await
            .is_err()
    );
    gcra_answers_within(&redis, Duration::from_secs(2), "after the freeze").await;
}
