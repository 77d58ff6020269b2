//! State that replicas must agree on, in Redis (`REDIS_URL`): the gateways'
//! rate buckets ([`Redis::gcra`]) and the user service's record cache
//! ([`Redis::cache_get`] and its version-guarded writes). The client
//! reconnects by itself; every command has a small budget
//! (`REDIS_TIMEOUT_MS`), past which it fails like an unreachable Redis, so
//! callers fall back (local buckets, the database) instead of waiting.
#![forbid(unsafe_code)]

mod scripts;
#[cfg(feature = "test-support")]
pub mod testing;

use redis::{AsyncCommands, aio::ConnectionManager};
use std::time::Duration;

pub use scripts::Gcra;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("REDIS_URL: {0}")]
    Url(String),
    #[error("Redis did not answer within {0:?}")]
    Slow(Duration),
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
    #[arg(long, env = "REDIS_CONNECT_TIMEOUT_MS", default_value_t = 250)]
    pub redis_connect_timeout_ms: u64,
    /// How long a command may take before the caller gives up on Redis for
    /// it (and falls back).
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 5)]
    pub redis_timeout_ms: u64,
    /// The prefix of every key, for several suites on one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "suite:")]
    pub redis_key_prefix: String,
}

impl RedisArgs {
    /// The client, if `REDIS_URL` is set. It connects on first use and
    /// again whenever the connection drops: a Redis that is down never
    /// stops a start.
    pub fn connect(&self) -> Result<Option<Redis>, Error> {
        let Some(url) = &self.redis_url else {
            return Ok(None);
        };
        let client = redis::Client::open(url.as_str()).map_err(|e| Error::Url(e.to_string()))?;
        let timeout = Duration::from_millis(self.redis_timeout_ms.max(1));
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(
                self.redis_connect_timeout_ms.max(1),
            )))
            .set_response_timeout(Some(timeout.max(Duration::from_millis(100))))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Some(Redis {
            conn,
            timeout,
            prefix: self.redis_key_prefix.clone(),
        }))
    }
}

/// A Redis client. Clones share the connection.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    timeout: Duration,
    prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// `key` under the configured prefix.
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// `op` within the command budget.
    async fn within<T>(&self, op: impl Future<Output = redis::RedisResult<T>>) -> Result<T, Error> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(Error::Slow(self.timeout)),
        }
    }

    /// One request against the GCRA bucket `key` (without the prefix):
    /// `interval` between requests on average, `burst` at once at most.
    /// One atomic script, one round trip, Redis's clock; the key expires
    /// when the bucket is full again.
    pub async fn gcra(&self, key: &str, interval: Duration, burst: u32) -> Result<Gcra, Error> {
        let mut conn = self.conn.clone();
        let key = self.key(key);
        self.within(scripts::gcra(&mut conn, &key, interval, burst))
            .await
    }

    /// The cached value under `key`, if any.
    pub async fn cache_get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let mut conn = self.conn.clone();
        let key = self.key(key);
        let entry = self
            .within(async move { conn.get::<_, Option<Vec<u8>>>(key).await })
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
        let mut conn = self.conn.clone();
        let (key, mark) = (self.key(key), self.key(&format!("{key}:written")));
        self.within(scripts::put_if_newer(
            &mut conn, &key, &mark, version, value, ttl,
        ))
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
        let mut conn = self.conn.clone();
        let (key, mark) = (self.key(key), self.key(&format!("{key}:written")));
        self.within(scripts::invalidate(
            &mut conn, &key, &mark, version, mark_ttl,
        ))
        .await
    }

    /// One round trip (readiness, recovery probes).
    pub async fn ping(&self) -> Result<(), Error> {
        let mut conn = self.conn.clone();
        self.within(async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await
            .map(drop)
    }
}
