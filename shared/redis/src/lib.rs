//! State that replicas must agree on, in Redis (`REDIS_URL`): the gateways'
//! rate buckets ([`Redis::gcra`]) and the user service's record cache
//! ([`Redis::cache_get`] and its version-guarded writes). Every command has a
//! small budget (`REDIS_TIMEOUT_MS`), past which it fails like an unreachable
//! Redis, so callers fall back (local buckets, the database) instead of
//! waiting.
//!
//! Recovery is the client's own, not left to the connection manager: a
//! command cut off by the budget is dropped before the manager sees any
//! error, and a connection whose peer vanished without closing it never
//! fails as "dropped", so the manager alone can keep a dead connection
//! forever. After any failure one watcher task probes Redis (PING and the
//! scripts, outside every caller's budget); while probes fail, commands fail
//! at once, the connection is replaced by a new one, and the probe is tried
//! again at most [`MAX_PROBE_DELAY`] later, however long Redis stays away.
#![forbid(unsafe_code)]

mod scripts;

use redis::{
    AsyncCommands,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use std::{
    sync::{
        Arc, LazyLock, RwLock, Weak,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

pub use scripts::{Gcra, GcraTake};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("REDIS_URL: {0}")]
    Url(String),
    #[error("Redis did not answer within {0:?}")]
    Slow(Duration),
    #[error("Redis does not answer (probing it again)")]
    Unavailable,
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Redis's settings, from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisArgs {
    /// `redis://[:password@]host:6379[/db]` (`rediss://` for TLS). Unset: no
    /// Redis (rate limits per process; no shared cache).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// How long an attempt to connect may take.
    #[arg(long, env = "REDIS_CONNECT_TIMEOUT_MS", default_value_t = DEFAULT_CONNECT_TIMEOUT_MS)]
    pub redis_connect_timeout_ms: u64,
    /// How long a command may take before the caller gives up on Redis for
    /// it (and falls back).
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = DEFAULT_TIMEOUT_MS)]
    pub redis_timeout_ms: u64,
    /// The prefix of every key, for several suites on one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = DEFAULT_KEY_PREFIX)]
    pub redis_key_prefix: String,
}

const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 250;
/// A command's budget: under the benchmark load on the 2-core machine (the
/// gateway's GCRA and the user cache on one Redis, 32 connections) answered
/// commands took at most 10 ms in a quiet run and 50 ms with other work on
/// the cores, while 5 ms cut off up to 2 % of them (BENCHMARKS.md, "Redis:
/// the command budget"). A cut-off command costs sharing (a local bucket, a
/// database read); a long budget costs little when Redis is gone, since
/// commands fail at once from the first failed probe on.
const DEFAULT_TIMEOUT_MS: u64 = 50;

/// The longest wait between two probes of a Redis that does not answer:
/// it is found again at most this long (plus a connection) after it returns.
pub const MAX_PROBE_DELAY: Duration = Duration::from_millis(500);
/// The first wait between probes, doubled after each failed one.
const MIN_PROBE_DELAY: Duration = Duration::from_millis(50);
const DEFAULT_KEY_PREFIX: &str = "suite:";

/// The defaults of the environment's settings (no Redis), for code that
/// builds a configuration without the environment (tests, benchmarks).
impl Default for RedisArgs {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            redis_timeout_ms: DEFAULT_TIMEOUT_MS,
            redis_key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

impl RedisArgs {
    /// The client, if `REDIS_URL` is set. It connects on first use and
    /// again whenever Redis fails it: a Redis that is down never stops a
    /// start.
    pub fn connect(&self) -> Result<Option<Redis>, Error> {
        let Some(url) = &self.redis_url else {
            return Ok(None);
        };
        let client = redis::Client::open(url.as_str()).map_err(|e| Error::Url(e.to_string()))?;
        let timeout = Duration::from_millis(self.redis_timeout_ms.max(1));
        let connect_timeout = Duration::from_millis(self.redis_connect_timeout_ms.max(1));
        // A probe connects (if it must), PINGs and loads the scripts.
        let probe_timeout = connect_timeout + timeout.max(Duration::from_millis(100));
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            // Bounds what runs on the connection without a caller's budget
            // (the watcher's own calls have theirs).
            .set_response_timeout(Some(probe_timeout))
            // One attempt per connection: the watcher is the retry loop, so
            // no backoff state of the manager's can outlast Redis's return.
            .set_number_of_retries(0);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        LazyLock::force(&METRICS);
        Ok(Some(Redis {
            inner: Arc::new(Inner {
                client,
                config,
                conn: RwLock::new(conn),
                timeout,
                probe_timeout,
                available: AtomicBool::new(true),
                watching: AtomicBool::new(false),
                answered: AtomicU64::new(0),
            }),
            prefix: self.redis_key_prefix.clone(),
        }))
    }
}

/// A Redis client. Clones share the connection and its watcher.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
    prefix: String,
}

struct Inner {
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// Replaced (never repaired) when a probe fails.
    conn: RwLock<ConnectionManager>,
    /// A command's budget.
    timeout: Duration,
    /// A probe's: a connection, a PING, the scripts.
    probe_timeout: Duration,
    /// False from a failed probe until one succeeds; meanwhile commands
    /// fail at once instead of spending their budget on a dead connection.
    available: AtomicBool,
    /// True while a watcher task runs (at most one).
    watching: AtomicBool,
    /// Successful probes so far (see [`Redis::answered`]).
    answered: AtomicU64,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .field("available", &self.is_available())
            .finish_non_exhaustive()
    }
}

struct RedisMetrics {
    /// Commands that Redis answered, by how long they took (the budget
    /// cuts the rest off; see `failures`).
    seconds: prometheus_client::metrics::histogram::Histogram,
    failures: prometheus_client::metrics::family::Family<
        FailureLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    available: prometheus_client::metrics::gauge::Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
struct FailureLabels {
    reason: &'static str,
}

static METRICS: LazyLock<RedisMetrics> = LazyLock::new(|| {
    let registry = suite_telemetry::metrics::metrics();
    let m = RedisMetrics {
        seconds: registry.registered(
            "suite_redis_command_seconds",
            "Redis commands answered (within the budget), by how long they took as the caller saw it",
            // Fine below 10 ms, where the budget is chosen.
            prometheus_client::metrics::histogram::Histogram::new([
                0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
                0.05, 0.1, 0.25, 1.0,
            ]),
        ),
        failures: registry.registered(
            "suite_redis_command_failures",
            "Redis commands failed: slow (past REDIS_TIMEOUT_MS), error, unavailable (failed at once while Redis does not answer probes)",
            Default::default(),
        ),
        available: registry.registered(
            "suite_redis_available",
            "1 while Redis answers this process's probes, 0 from a failed probe until one succeeds",
            Default::default(),
        ),
    };
    m.available.set(1);
    m
});

fn failed(reason: &'static str) {
    METRICS
        .failures
        .get_or_create(&FailureLabels { reason })
        .inc();
}

impl Redis {
    /// `key` under the configured prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// False while Redis does not answer the client's probes (commands fail
    /// at once meanwhile); true again as soon as a probe succeeds.
    pub fn is_available(&self) -> bool {
        self.inner.available.load(Ordering::Acquire)
    }

    /// How many probes Redis has answered so far: a caller that fell back
    /// at one count may try Redis again once it has grown.
    pub fn answered(&self) -> u64 {
        self.inner.answered.load(Ordering::Acquire)
    }

    /// `op` on the current connection within the command budget. Any
    /// failure starts the watcher: a dropped command tells the connection
    /// manager nothing, so nothing else would notice a dead connection.
    async fn within<T, F>(&self, op: impl FnOnce(ConnectionManager) -> F) -> Result<T, Error>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_available() {
            failed("unavailable");
            return Err(Error::Unavailable);
        }
        let conn = self.inner.current();
        let start = Instant::now();
        let result = match tokio::time::timeout(self.inner.timeout, op(conn)).await {
            Ok(Ok(v)) => {
                METRICS.seconds.observe(start.elapsed().as_secs_f64());
                return Ok(v);
            }
            Ok(Err(e)) => {
                failed("error");
                Err(Error::Redis(e))
            }
            Err(_) => {
                failed("slow");
                Err(Error::Slow(self.inner.timeout))
            }
        };
        Inner::watch(&self.inner);
        result
    }

    /// One request against the GCRA bucket `key` (without the prefix):
    /// `interval` between requests on average, `burst` at once at most.
    /// One atomic script, one round trip, Redis's clock; the key expires
    /// when the bucket is full again.
    pub async fn gcra(&self, key: &str, interval: Duration, burst: u32) -> Result<Gcra, Error> {
        let key = self.key(key);
        self.within(|mut conn| async move { scripts::gcra(&mut conn, &key, interval, burst).await })
            .await
    }

    /// Up to `want` requests at once against the GCRA bucket `key` (as
    /// [`Redis::gcra`]): as many as the bucket admits now, at least one, or
    /// none and how long until one. One script call, one round trip.
    pub async fn gcra_take(
        &self,
        key: &str,
        interval: Duration,
        burst: u32,
        want: u32,
    ) -> Result<GcraTake, Error> {
        let key = self.key(key);
        self.within(|mut conn| async move {
            scripts::gcra_take(&mut conn, &key, interval, burst, want).await
        })
        .await
    }

    /// The cached value under `key`, if any.
    pub async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let key = self.key(key);
        let entry = self
            .within(|mut conn| async move { conn.get::<_, Option<Vec<u8>>>(key).await })
            .await?;
        Ok(entry.and_then(|e| scripts::strip_version(&e).map(<[u8]>::to_vec)))
    }

    /// Caches `value`, read at `version`, under `key` for `ttl`, unless a
    /// newer version was written since (a writer's mark says so) or is
    /// cached already: a reader that fetched the row before a write and
    /// stores it after cannot bring the old row back. True if stored.
    pub async fn cache_put(
        &self,
        key: &str,
        version: i64,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, Error> {
        let (key, mark) = (self.key(key), self.key(&format!("{key}:written")));
        self.within(|mut conn| async move {
            scripts::put_if_newer(&mut conn, &key, &mark, version, value, ttl).await
        })
        .await
    }

    /// A write of `version` is committed: marks it (for `mark_ttl`) and
    /// drops what is cached, so no reader stores anything older.
    pub async fn cache_invalidate(
        &self,
        key: &str,
        version: i64,
        mark_ttl: Duration,
    ) -> Result<(), Error> {
        let (key, mark) = (self.key(key), self.key(&format!("{key}:written")));
        self.within(|mut conn| async move {
            scripts::invalidate(&mut conn, &key, &mark, version, mark_ttl).await
        })
        .await
    }

    /// One round trip (readiness, recovery probes).
    pub async fn ping(&self) -> Result<(), Error> {
        self.within(
            |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await },
        )
        .await
        .map(drop)
    }
}

impl Inner {
    fn current(&self) -> ConnectionManager {
        match self.conn.read() {
            Ok(conn) => conn.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Starts the watcher unless one runs.
    fn watch(this: &Arc<Self>) {
        if this.watching.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = Arc::downgrade(this);
        tokio::spawn(Self::watcher(weak));
    }

    /// Probes until Redis answers: a PING and the scripts loaded (a Redis
    /// that restarted has none, and loading them in a caller's command would
    /// cost it two more round trips of its budget). A failed probe marks
    /// Redis unavailable and replaces the connection, whatever state the old
    /// one was in; the waits between probes grow to [`MAX_PROBE_DELAY`] and
    /// no further, so a Redis back after any outage is found within it.
    async fn watcher(weak: Weak<Self>) {
        let mut delay = MIN_PROBE_DELAY;
        loop {
            let Some(this) = weak.upgrade() else { return };
            let mut conn = this.current();
            let probe = async {
                redis::cmd("PING").query_async::<String>(&mut conn).await?;
                scripts::load_all(&mut conn).await
            };
            match tokio::time::timeout(this.probe_timeout, probe).await {
                Ok(Ok(())) => {
                    this.answered.fetch_add(1, Ordering::AcqRel);
                    if !this.available.swap(true, Ordering::AcqRel) {
                        tracing::info!("Redis answers again");
                    }
                    METRICS.available.set(1);
                    this.watching.store(false, Ordering::Release);
                    return;
                }
                failure => {
                    if this.available.swap(false, Ordering::AcqRel) {
                        let error = match failure {
                            Ok(Err(e)) => e.to_string(),
                            _ => format!("no answer within {:?}", this.probe_timeout),
                        };
                        tracing::warn!(%error, "Redis does not answer; probing it until it does");
                    }
                    METRICS.available.set(0);
                    // A fresh connection: no stuck socket, no reconnect
                    // state of the manager's carried over.
                    match ConnectionManager::new_lazy_with_config(
                        this.client.clone(),
                        this.config.clone(),
                    ) {
                        Ok(fresh) => match this.conn.write() {
                            Ok(mut conn) => *conn = fresh,
                            Err(poisoned) => *poisoned.into_inner() = fresh,
                        },
                        Err(e) => tracing::warn!(error = %e, "a new Redis connection"),
                    }
                }
            }
            drop(this);
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_PROBE_DELAY);
        }
    }
}
