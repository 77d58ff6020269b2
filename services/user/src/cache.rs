//! The user record cache (with `REDIS_URL`): the full view of a user, never
//! an HTTP response (authorization runs per caller on every read, before the
//! cache is asked), never the password hash. Reads fill it; every write
//! invalidates it before it is acknowledged, marking the version it wrote so
//! that a slow reader holding an older row cannot store it afterwards; the
//! user events invalidate it too (a write whose invalidation Redis failed).
//! Redis down or slow: reads go to the database, nothing fails.

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

pub struct UserCache {
    redis: Option<suite_redis::Redis>,
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
    pub fn new(redis: Option<suite_redis::Redis>, ttl: Duration) -> Self {
        LazyLock::force(&REQUESTS);
        Self {
            redis,
            ttl,
            pending: Default::default(),
        }
    }

    /// The cached full view of user `id`, if there is one (and Redis answers).
    pub async fn get(&self, id: Uuid) -> Option<User> {
        let redis = self.redis.as_ref()?;
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
        let (Some(redis), Ok(version)) = (self.redis.as_ref(), user.etag.parse::<i64>()) else {
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
        let Some(redis) = self.redis.clone() else {
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
        let Some(redis) = self.redis.as_ref() else {
            return true;
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
        self.redis.is_some()
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
