//! Every store call in a database span (see `suite_db::span`),
//! whichever backend is underneath.

use super::{Also, Attempt, Counter, Failures, Result, UserRecord, UserStore};
use crate::mail::links::TokenRecord;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use suite_db::Traced;
use suite_events::Event;
use uuid::Uuid;

#[async_trait]
impl UserStore for Traced<dyn UserStore> {
    async fn insert(&self, user: &UserRecord, events: &[Event], also: &Also<'_>) -> Result<()> {
        self.run("INSERT", "users", || {
            self.inner().insert(user, events, also)
        })
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
    async fn update(&self, user: &UserRecord, events: &[Event], also: &Also<'_>) -> Result<bool> {
        self.run("UPDATE", "users", || {
            self.inner().update(user, events, also)
        })
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
    async fn append_events(&self, events: &[Event], also: &Also<'_>) -> Result<()> {
        self.run("INSERT", "outbox", || {
            self.inner().append_events(events, also)
        })
        .await
    }
    async fn find_token(&self, hash: &[u8]) -> Result<Option<TokenRecord>> {
        self.run("SELECT", "user_tokens", || self.inner().find_token(hash))
            .await
    }
    async fn recent_links(
        &self,
        user: Uuid,
        email: &str,
        since: DateTime<Utc>,
    ) -> Result<(i64, i64)> {
        self.run("SELECT", "user_tokens", || {
            self.inner().recent_links(user, email, since)
        })
        .await
    }
    async fn knows_client(&self, user: Uuid, client: &str) -> Result<(bool, bool)> {
        self.run("SELECT", "known_clients", || {
            self.inner().knows_client(user, client)
        })
        .await
    }
    async fn prune_tokens(&self, before: DateTime<Utc>) -> Result<u64> {
        self.run("DELETE", "user_tokens", || {
            self.inner().prune_tokens(before)
        })
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
