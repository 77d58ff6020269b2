//! The user record cache in this process's memory, for a user service that
//! runs alone (the launcher, a one-replica deployment) and has no Redis.
//! The same rules as the Redis one: an entry is the full view at a version,
//! a write marks its version before it is acknowledged, and no reader can
//! store a version older than a mark or than what is cached. Bounded in
//! entries (quick_cache's eviction keeps the frequently read ones); entries
//! expire after the TTL all the same.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use suite_proto::user::User;
use uuid::Uuid;

#[derive(Clone)]
struct Entry {
    user: Arc<User>,
    version: i64,
    expires: Instant,
}

/// A writer's mark: `version` is committed; nothing older may be stored
/// until `until` (long after any reader that fetched an older row has
/// tried to store it).
struct Mark {
    version: i64,
    until: Instant,
}

pub struct Memory {
    entries: quick_cache::sync::Cache<Uuid, Entry>,
    /// Held while a put checks the marks and stores, and while a write
    /// marks and drops: the two never interleave.
    marks: Mutex<Marks>,
    ttl: Duration,
}

#[derive(Default)]
struct Marks {
    by_id: HashMap<Uuid, Mark>,
    /// When the expired marks are next swept out.
    next_sweep: Option<Instant>,
}

impl Memory {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            marks: Mutex::default(),
            ttl,
        }
    }

    pub fn get(&self, id: Uuid) -> Option<User> {
        let entry = self.entries.get(&id)?;
        if entry.expires <= Instant::now() {
            self.entries.remove(&id);
            return None;
        }
        Some(User::clone(&entry.user))
    }

    /// Stores `user`, read at `version`, unless a newer version was marked
    /// or is cached already. True if stored.
    pub fn put(&self, id: Uuid, version: i64, user: &User) -> bool {
        let now = Instant::now();
        let marks = self.lock();
        if marks
            .by_id
            .get(&id)
            .is_some_and(|m| m.until > now && m.version > version)
        {
            return false;
        }
        if self
            .entries
            .get(&id)
            .is_some_and(|e| e.version > version && e.expires > now)
        {
            return false;
        }
        self.entries.insert(
            id,
            Entry {
                user: Arc::new(user.clone()),
                version,
                expires: now + self.ttl,
            },
        );
        true
    }

    /// Version `version` of user `id` is committed: marks it and drops
    /// what is cached.
    pub fn invalidate(&self, id: Uuid, version: i64) {
        let now = Instant::now();
        let mut marks = self.lock();
        let until = now + self.ttl * 2;
        marks
            .by_id
            .entry(id)
            .and_modify(|m| {
                if m.version < version || m.until <= now {
                    *m = Mark { version, until };
                }
            })
            .or_insert(Mark { version, until });
        self.entries.remove(&id);
        // Marks are few (one per user written within two TTLs): swept
        // once a TTL, not on a timer.
        if marks.next_sweep.is_none_or(|at| at <= now) {
            marks.by_id.retain(|_, m| m.until > now);
            marks.next_sweep = Some(now + self.ttl);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Marks> {
        crate::lock_ignoring_poison(&self.marks)
    }

    #[cfg(test)]
    fn marks(&self) -> usize {
        self.lock().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, version: i64) -> User {
        User {
            display_name: name.into(),
            etag: version.to_string(),
            ..User::default()
        }
    }

    #[test]
    fn a_stored_entry_is_read_back_until_it_is_invalidated() {
        let cache = Memory::new(10, Duration::from_secs(60));
        let id = Uuid::now_v7();
        assert!(cache.get(id).is_none());
        assert!(cache.put(id, 1, &user("one", 1)));
        assert_eq!(cache.get(id).expect("cached").display_name, "one");
        cache.invalidate(id, 2);
        assert!(cache.get(id).is_none());
    }

    #[test]
    fn a_reader_holding_an_older_row_cannot_store_it_after_a_write() {
        let cache = Memory::new(10, Duration::from_secs(60));
        let id = Uuid::now_v7();
        // A reader fetched version 1; a writer committed version 2 first.
        cache.invalidate(id, 2);
        assert!(!cache.put(id, 1, &user("old", 1)));
        assert!(cache.get(id).is_none());
        // The new version is stored, and an older one never replaces it.
        assert!(cache.put(id, 2, &user("new", 2)));
        assert!(!cache.put(id, 1, &user("old", 1)));
        assert_eq!(cache.get(id).expect("cached").display_name, "new");
        // A mark never goes back: an older write's late mark keeps the newer.
        cache.invalidate(id, 3);
        cache.invalidate(id, 2);
        assert!(!cache.put(id, 2, &user("two", 2)));
        assert!(cache.put(id, 3, &user("three", 3)));
    }

    #[test]
    fn a_deleted_user_is_never_stored_again() {
        let cache = Memory::new(10, Duration::from_secs(60));
        let id = Uuid::now_v7();
        cache.put(id, 4, &user("gone", 4));
        cache.invalidate(id, i64::MAX);
        assert!(!cache.put(id, 5, &user("gone", 5)));
        assert!(cache.get(id).is_none());
    }

    #[test]
    fn entries_expire_and_marks_are_swept() {
        let cache = Memory::new(10, Duration::from_millis(1));
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        cache.put(a, 1, &user("a", 1));
        cache.invalidate(b, 2);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cache.get(a).is_none(), "expired");
        // Past the mark's life, an older reader's row may be stored (it is
        // as old as any row the database would give a reader now).
        assert!(cache.put(b, 1, &user("b", 1)));
        cache.invalidate(a, 2);
        assert_eq!(cache.marks(), 1, "the expired mark was swept");
    }

    #[test]
    fn the_number_of_entries_is_bounded() {
        let cache = Memory::new(100, Duration::from_secs(60));
        for v in 0..10_000 {
            cache.put(Uuid::now_v7(), 1, &user("many", v));
        }
        assert!(
            cache.entries.len() <= 200,
            "{} entries kept",
            cache.entries.len()
        );
    }
}
