//! The user record cache in Redis (a `redis-server` of each test's own),
//! on two replicas of the user service over one PostgreSQL: a hit on the
//! second read, a write on either replica invalidates before it is
//! acknowledged, never stale under concurrent writers and readers, and
//! bypassed while Redis is away. And the same rules for the cache in the
//! memory of a user service that runs alone (no Redis: the launcher, one
//! replica), on both databases; `USER_CACHE=off` reads the database.

use crate::helpers::{Backend, TestApp, TestDb, spawn_app, spawn_app_with, start, test_config};
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use suite_proto::user::User;
use suite_testkit::RedisServer;
use suite_tokens::SigningKey;

/// Two replicas on one database, caching in `redis`.
async fn two_replicas(redis: &RedisServer) -> Option<(TestApp, TestApp)> {
    let url = redis.url();
    let first = spawn_app_with(Backend::Postgres, |c| {
        c.redis.redis_url = Some(url.clone());
        c.redis.redis_timeout_ms = 500;
    })
    .await?;
    let mut config = test_config(&first.db.url, &first.key);
    config.redis.redis_url = Some(url);
    config.redis.redis_timeout_ms = 500;
    let spare = TestDb::create(Backend::Sqlite, "spare").await?;
    let key = SigningKey::from_pkcs8_pem("test-key-1", &first.key.to_pkcs8_pem()).expect("key");
    let second = start(config, key, spare).await;
    second.wait_until_serving().await;
    Some((first, second))
}

/// Changes the stored row behind the service's back (its version stays).
async fn sneak(db: &TestDb, id: &str, display_name: &str) {
    if db.url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&db.url).await.expect("sqlite");
        let id = uuid::Uuid::parse_str(id).expect("an id");
        sqlx::query("UPDATE users SET display_name = ?2 WHERE id = ?1")
            .bind(id)
            .bind(display_name)
            .execute(&pool)
            .await
            .expect("update");
        pool.close().await;
        return;
    }
    let pool = sqlx::PgPool::connect(&db.url).await.expect("pg");
    sqlx::query("UPDATE users SET display_name = $2 WHERE id = $1::uuid")
        .bind(id)
        .bind(display_name)
        .execute(&pool)
        .await
        .expect("update");
    pool.close().await;
}

/// The `result` counts of `suite_user_cache_requests_total` so far.
fn cache_count(result: &str) -> u64 {
    suite_telemetry::metrics::metrics()
        .encode()
        .lines()
        .find(|l| {
            l.starts_with("suite_user_cache_requests_total{")
                && l.contains(&format!("result=\"{result}\""))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

fn named(id: &str, display_name: &str) -> User {
    User {
        id: id.into(),
        display_name: display_name.into(),
        ..User::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_read_is_a_hit_and_a_write_on_either_replica_invalidates_it() {
    let redis = RedisServer::start();
    let Some((a, b)) = two_replicas(&redis).await else {
        return;
    };
    let user = a.create_user("cached").await;
    let admin = a.admin_token();
    assert_eq!(a.get(&admin, &user.id).await.expect("get").display_name, "");
    // Served from the cache from now on: a change made behind the service's
    // back is not seen, on either replica.
    sneak(&a.db, &user.id, "behind its back").await;
    assert_eq!(a.get(&admin, &user.id).await.expect("get").display_name, "");
    assert_eq!(b.get(&admin, &user.id).await.expect("get").display_name, "");
    // A write through either replica is seen at once by both.
    b.update(&admin, named(&user.id, "by b"), &["display_name"])
        .await
        .expect("update");
    assert_eq!(
        a.get(&admin, &user.id).await.expect("get").display_name,
        "by b"
    );
    a.update(&admin, named(&user.id, "by a"), &["display_name"])
        .await
        .expect("update");
    assert_eq!(
        b.get(&admin, &user.id).await.expect("get").display_name,
        "by a"
    );
    // Authorization still runs per caller: a stranger is refused a cached user.
    let stranger = a.token_for(&a.create_user("stranger").await);
    assert_eq!(
        b.get(&stranger, &user.id)
            .await
            .expect_err("not theirs")
            .code(),
        tonic::Code::PermissionDenied
    );
    // Deleted: gone from both.
    let mut c = a.client.clone();
    c.delete_user(crate::helpers::authed(
        suite_proto::user::DeleteUserRequest {
            id: user.id.clone(),
            etag: String::new(),
        },
        &admin,
    ))
    .await
    .expect("delete");
    assert_eq!(
        b.get(&admin, &user.id).await.expect_err("deleted").code(),
        tonic::Code::NotFound
    );
}

/// Writers on both replicas, one update after another, and readers on both
/// at the same time: a read that begins after a write was acknowledged
/// never returns an older version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_never_older_than_the_last_acknowledged_write() {
    let redis = RedisServer::start();
    let Some((a, b)) = two_replicas(&redis).await else {
        return;
    };
    never_older_than_the_last_acknowledged_write(vec![a, b]).await;
}

/// Writers on every app in turn, one update after another, and 4 readers
/// on them at the same time: a read that begins after a write was
/// acknowledged never returns an older version.
async fn never_older_than_the_last_acknowledged_write(apps: Vec<TestApp>) {
    let user = apps[0].create_user("raced").await;
    let admin = apps[0].admin_token();
    let apps = Arc::new(apps);
    // (ack instant, version) of each write; (start instant, version) of each read.
    let acked: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let reads: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut readers = Vec::new();
    for r in 0..4 {
        let (apps, reads, done, admin, id) = (
            apps.clone(),
            reads.clone(),
            done.clone(),
            admin.clone(),
            user.id.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut i = r;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let got = apps[i % apps.len()].get(&admin, &id).await.expect("read");
                reads
                    .lock()
                    .expect("lock")
                    .push((started, got.etag.parse().expect("version")));
                i += 1;
            }
        }));
    }
    for i in 0..150 {
        let app = &apps[i % apps.len()];
        let updated = app
            .update(&admin, named(&user.id, &format!("v{i}")), &["display_name"])
            .await
            .expect("update");
        acked
            .lock()
            .expect("lock")
            .push((Instant::now(), updated.etag.parse().expect("version")));
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for r in readers {
        r.await.expect("reader");
    }
    let acked = acked.lock().expect("lock").clone();
    let reads = reads.lock().expect("lock").clone();
    assert!(
        reads.len() > 100,
        "the readers hardly read: {}",
        reads.len()
    );
    for (started, version) in &reads {
        let newest_acked = acked
            .iter()
            .filter(|(at, _)| at < started)
            .map(|(_, v)| *v)
            .max()
            .unwrap_or(0);
        assert!(
            *version >= newest_acked,
            "a read begun after version {newest_acked} was acknowledged returned version {version}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_away_reads_and_writes_go_to_the_database() {
    let mut redis = RedisServer::start();
    let Some((a, b)) = two_replicas(&redis).await else {
        return;
    };
    let user = a.create_user("away").await;
    let admin = a.admin_token();
    a.get(&admin, &user.id).await.expect("cached");
    redis.stop();
    for app in [&a, &b] {
        assert_eq!(
            app.get(&admin, &user.id).await.expect("get").display_name,
            ""
        );
    }
    b.update(&admin, named(&user.id, "while away"), &["display_name"])
        .await
        .expect("a write without Redis");
    for app in [&a, &b] {
        assert_eq!(
            app.get(&admin, &user.id).await.expect("get").display_name,
            "while away"
        );
    }
    // Back (empty: it kept nothing): cached again, and fresh.
    redis.start_again();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert_eq!(
            a.get(&admin, &user.id).await.expect("get").display_name,
            "while away"
        );
        let client = redis::Client::open(redis.url()).expect("url");
        let cached: Option<Vec<u8>> = match client.get_multiplexed_async_connection().await {
            Ok(mut c) => redis::cmd("GET")
                .arg(format!("suite:user:{}", user.id))
                .query_async(&mut c)
                .await
                .unwrap_or(None),
            Err(_) => None,
        };
        if cached.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "never cached again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A user service alone, without Redis: cached in its memory by default.
async fn in_memory_a_second_read_is_a_hit_and_a_write_invalidates_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let user = app.create_user("remembered").await;
    let admin = app.admin_token();
    let hits = cache_count("hit");
    assert_eq!(
        app.get(&admin, &user.id).await.expect("get").display_name,
        ""
    );
    sneak(&app.db, &user.id, "behind its back").await;
    assert_eq!(
        app.get(&admin, &user.id).await.expect("get").display_name,
        "",
        "the second read is served from memory"
    );
    assert!(cache_count("hit") > hits, "no hit counted");
    // A write is seen by the very next read.
    app.update(&admin, named(&user.id, "written"), &["display_name"])
        .await
        .expect("update");
    assert_eq!(
        app.get(&admin, &user.id).await.expect("get").display_name,
        "written"
    );
    // Authorization runs per caller: a stranger is refused a cached user,
    // and the user themself is served it.
    let stranger = app.token_for(&app.create_user("stranger").await);
    assert_eq!(
        app.get(&stranger, &user.id)
            .await
            .expect_err("not theirs")
            .code(),
        tonic::Code::PermissionDenied
    );
    let own = app.token_for(&user);
    assert_eq!(
        app.get(&own, &user.id).await.expect("own").display_name,
        "written"
    );
    let mut c = app.client.clone();
    c.delete_user(crate::helpers::authed(
        suite_proto::user::DeleteUserRequest {
            id: user.id.clone(),
            etag: String::new(),
        },
        &admin,
    ))
    .await
    .expect("delete");
    assert_eq!(
        app.get(&admin, &user.id).await.expect_err("deleted").code(),
        tonic::Code::NotFound
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_on_sqlite() {
    in_memory_a_second_read_is_a_hit_and_a_write_invalidates_it(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_on_postgres() {
    in_memory_a_second_read_is_a_hit_and_a_write_invalidates_it(Backend::Postgres).await;
}

/// Writers and readers at once on a user service alone: a read begun after
/// a write was acknowledged never returns an older version.
async fn in_memory_reads_are_never_older_than_the_last_acknowledged_write(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    never_older_than_the_last_acknowledged_write(vec![app]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_never_stale_on_sqlite() {
    in_memory_reads_are_never_older_than_the_last_acknowledged_write(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_never_stale_on_postgres() {
    in_memory_reads_are_never_older_than_the_last_acknowledged_write(Backend::Postgres).await;
}

/// `USER_CACHE=off` (several replicas without Redis): every read is the
/// database's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cache_off_every_read_goes_to_the_database() {
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.user_cache = suite_user::cache::CacheMode::Off;
    })
    .await
    else {
        return;
    };
    let user = app.create_user("uncached").await;
    let admin = app.admin_token();
    app.get(&admin, &user.id).await.expect("get");
    sneak(&app.db, &user.id, "behind its back").await;
    assert_eq!(
        app.get(&admin, &user.id).await.expect("get").display_name,
        "behind its back"
    );
}

/// `USER_CACHE=redis` without `REDIS_URL` does not start, and says why.
#[tokio::test]
async fn redis_caching_without_redis_does_not_start() {
    let db = TestDb::create(Backend::Sqlite, "no-redis")
        .await
        .expect("sqlite");
    let key = SigningKey::generate("test-key-1").expect("key");
    let mut config = test_config(&db.url, &key);
    config.user_cache = suite_user::cache::CacheMode::Redis;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let err = suite_user::serve(config, listener, std::future::pending())
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("REDIS_URL"), "{err}");
}
