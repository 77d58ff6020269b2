//! The user record cache: the full view of a user, never an HTTP response
//! (authorization runs per caller on every read, before the cache is
//! asked), never the password hash. Reads fill it; every write invalidates
//! it before it is acknowledged, marking the version it wrote so that a slow
//! reader holding an older row cannot store it afterwards; the user events
//! invalidate it too (a write whose invalidation Redis failed, or one made
//! by another replica).
//!
//! In Redis (with `REDIS_URL`), shared by the replicas; Redis down or slow:
//! reads go to the database, nothing fails. Without Redis, in this process's
//! memory ([`memory`]), which is right only for a user service that runs
//! alone (`USER_CACHE`, see [`CacheMode`]).

pub mod memory;

use prometheus_client::{
    encoding::EncodeLabelSet, metrics::counter::Counter, metrics::family::Family,
};
use prost::Message;
use std::{sync::LazyLock, time::Duration};
use suite_proto::user::User;
use uuid::Uuid;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

static REQUESTS: LazyLock<Family<ResultLabels, Counter>> = LazyLock::new(|| {
    suite_telemetry::metrics::metrics().registered(
        "suite_user_cache_requests",
        "User cache lookups and writes by result (hit, miss, bypass, error)",
        Family::default(),
    )
});

fn count(result: &'static str) {
    REQUESTS.get_or_create(&ResultLabels { result }).inc();
}

/// Where user records are cached (`USER_CACHE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheMode {
    /// In Redis with `REDIS_URL`; otherwise in this process's memory.
    Auto,
    /// In Redis (`REDIS_URL` required).
    Redis,
    /// In this process's memory: only for a user service that runs alone,
    /// since another replica's writes reach it only through the events.
    Memory,
    /// Not cached: every read goes to the database (several replicas
    /// without Redis).
    Off,
}

enum Backend {
    Off,
    Redis(suite_redis::Redis),
    Memory(memory::Memory),
}

pub struct UserCache {
    backend: Backend,
    ttl: Duration,
    /// Invalidations Redis failed and that are being retried: meanwhile
    /// this replica reads past the cache.
    pending: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How often a failed invalidation is tried again.
const RETRY_EVERY: Duration = Duration::from_millis(50);

fn key(id: Uuid) -> String {
    format!("user:{id}")
}

impl UserCache {
    /// A cache in `redis`, or none.
    pub fn new(redis: Option<suite_redis::Redis>, ttl: Duration) -> Self {
        Self::of(redis.map_or(Backend::Off, Backend::Redis), ttl)
    }

    /// A cache in this process's memory of at most about `capacity` users.
    pub fn in_memory(capacity: usize, ttl: Duration) -> Self {
        Self::of(Backend::Memory(memory::Memory::new(capacity, ttl)), ttl)
    }

    fn of(backend: Backend, ttl: Duration) -> Self {
        LazyLock::force(&REQUESTS);
        Self {
            backend,
            ttl,
            pending: Default::default(),
        }
    }

    /// Where this cache keeps its entries: `redis`, `memory` or `off`.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Off => "off",
            Backend::Redis(_) => "redis",
            Backend::Memory(_) => "memory",
        }
    }

    fn redis(&self) -> Option<&suite_redis::Redis> {
        match &self.backend {
            Backend::Redis(redis) => Some(redis),
            _ => None,
        }
    }

    /// The cached full view of user `id`, if there is one (and Redis answers).
    pub async fn get(&self, id: Uuid) -> Option<User> {
        if let Backend::Memory(memory) = &self.backend {
            let user = memory.get(id);
            count(if user.is_some() { "hit" } else { "miss" });
            return user;
        }
        let redis = self.redis()?;
        if self.pending.load(std::sync::atomic::Ordering::Acquire) > 0 {
            count("bypass");
            return None;
        }
        match redis.cache_get(&key(id)).await {
            Ok(Some(bytes)) => match User::decode(bytes.as_slice()) {
                Ok(user) => {
                    count("hit");
                    Some(user)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "an undecodable cache entry; reading the database");
                    count("error");
                    None
                }
            },
            Ok(None) => {
                count("miss");
                None
            }
            Err(e) => {
                tracing::debug!(error = %e, "user cache unavailable; reading the database");
                count("error");
                None
            }
        }
    }

    /// Caches `user` (its full view, as read at its `etag` version), unless
    /// a newer version was written meanwhile.
    pub async fn put(&self, id: Uuid, user: &User) {
        let Ok(version) = user.etag.parse::<i64>() else {
            return;
        };
        if let Backend::Memory(memory) = &self.backend {
            memory.put(id, version, user);
            return;
        }
        let Some(redis) = self.redis() else {
            return;
        };
        if let Err(e) = redis
            .cache_put(&key(id), version, &user.encode_to_vec(), self.ttl)
            .await
        {
            tracing::debug!(error = %e, "user cache unavailable; not cached");
            count("error");
        }
    }

    /// Version `version` of user `id` is committed: nothing older may be
    /// served from the cache. If Redis fails, the invalidation is retried
    /// in the background until it answers, and until then this replica
    /// reads past the cache (the user's event retries it on every replica
    /// too).
    pub async fn written(&self, id: Uuid, version: i64) {
        if self.invalidate(id, version).await {
            return;
        }
        let Some(redis) = self.redis().cloned() else {
            return;
        };
        let (pending, ttl) = (self.pending.clone(), self.ttl);
        pending.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        tokio::spawn(async move {
            while redis
                .cache_invalidate(&key(id), version, ttl * 2)
                .await
                .is_err()
            {
                tokio::time::sleep(RETRY_EVERY).await;
            }
            pending.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        });
    }

    /// One attempt at [`UserCache::written`]'s invalidation; false if Redis
    /// failed it.
    pub async fn invalidate(&self, id: Uuid, version: i64) -> bool {
        let redis = match &self.backend {
            Backend::Off => return true,
            Backend::Memory(memory) => {
                memory.invalidate(id, version);
                return true;
            }
            Backend::Redis(redis) => redis,
        };
        // The mark outlives any entry stored before it.
        match redis
            .cache_invalidate(&key(id), version, self.ttl * 2)
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, user.id = %id, "invalidating the user cache failed; the user's event will");
                count("error");
                false
            }
        }
    }

    pub fn enabled(&self) -> bool {
        !matches!(self.backend, Backend::Off)
    }
}

/// Invalidates from the user events (every replica, each its own
/// subscription): a write whose own invalidation Redis failed is caught up
/// as soon as Redis answers again.
pub fn follow_events(
    bus: suite_events::Bus,
    cache: std::sync::Arc<UserCache>,
) -> tokio::task::JoinHandle<()> {
    use prost::Name;
    use suite_proto::user::{PasswordChanged, RolesChanged, UserDeleted, UserUpdated};
    tokio::spawn(async move {
        if !cache.enabled() {
            return;
        }
        let filter = suite_events::Filter {
            streams: vec![suite_events::Stream::User],
            types: vec![
                UserUpdated::full_name(),
                UserDeleted::full_name(),
                PasswordChanged::full_name(),
                RolesChanged::full_name(),
            ],
            ..Default::default()
        };
        let start = suite_events::Start::New;
        suite_events::resubscribe::follow(&bus, filter, start, "user events", |item| {
            let cache = cache.clone();
            async move {
                let suite_events::Item::Event { event, .. } = item else {
                    return;
                };
                let Ok(id) = Uuid::parse_str(&event.subject) else {
                    return;
                };
                let version = event
                    .decode::<UserUpdated>()
                    .and_then(|u| u.user)
                    .and_then(|u| u.etag.parse().ok())
                    // Deleted: nothing of the user may be cached again.
                    .or_else(|| event.decode::<UserDeleted>().map(|_| i64::MAX))
                    .unwrap_or(0);
                while !cache.invalidate(id, version).await {
                    tokio::time::sleep(RETRY_EVERY).await;
                }
            }
        })
        .await;
    })
}
