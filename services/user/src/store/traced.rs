//! Every store call in a database span (see `suite_db::span`),
//! whichever backend is underneath.

use super::{Attempt, Counter, Failures, Result, UserRecord, UserStore};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use suite_db::Traced;
use suite_events::Event;
use uuid::Uuid;

#[async_trait]
impl UserStore for Traced<dyn UserStore> {
    async fn insert(&self, user: &UserRecord, events: &[Event]) -> Result<()> {
        self.run("INSERT", "users", || self.inner().insert(user, events))
            .await
    }
    async fn import(&self, users: &[UserRecord], events: &[Event]) -> Result<Vec<Uuid>> {
        self.run("INSERT", "users", || self.inner().import(users, events))
            .await
    }
    async fn get(&self, id: Uuid) -> Result<Option<UserRecord>> {
        self.run("SELECT", "users", || self.inner().get(id)).await
    }
    async fn find_by_login(&self, login: &str) -> Result<Option<UserRecord>> {
        self.run("SELECT", "users", || self.inner().find_by_login(login))
            .await
    }
    async fn list(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<UserRecord>> {
        self.run("SELECT", "users", || self.inner().list(after, limit))
            .await
    }
    async fn count(&self) -> Result<i64> {
        self.run("SELECT", "users", || self.inner().count()).await
    }
    async fn update(&self, user: &UserRecord, events: &[Event]) -> Result<bool> {
        self.run("UPDATE", "users", || self.inner().update(user, events))
            .await
    }
    async fn replace_hash(&self, id: Uuid, old: &str, new: &str) -> Result<()> {
        self.run("UPDATE", "users", || {
            self.inner().replace_hash(id, old, new)
        })
        .await
    }
    async fn delete(
        &self,
        id: Uuid,
        version: i64,
        at: DateTime<Utc>,
        events: &[Event],
    ) -> Result<bool> {
        self.run("UPDATE", "users", || {
            self.inner().delete(id, version, at, events)
        })
        .await
    }
    async fn append_events(&self, events: &[Event]) -> Result<()> {
        self.run("INSERT", "outbox", || self.inner().append_events(events))
            .await
    }
    async fn failures(&self, key: &str) -> Result<Option<Failures>> {
        self.run("SELECT", "password_failures", || self.inner().failures(key))
            .await
    }
    async fn reserve_attempt(
        &self,
        counters: &[Counter<'_>],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<Attempt> {
        self.run("UPDATE", "password_failures", || {
            self.inner().reserve_attempt(counters, at, forget_before)
        })
        .await
    }
    async fn release_attempt(&self, clear: &str, decrement: &str, free: i64) -> Result<()> {
        self.run("UPDATE", "password_failures", || {
            self.inner().release_attempt(clear, decrement, free)
        })
        .await
    }
    async fn prune_failures(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64> {
        self.run("DELETE", "password_failures", || {
            self.inner().prune_failures(before, now)
        })
        .await
    }
}
