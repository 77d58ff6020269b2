//! Every store call in a database span (see `suite_db::span`),
//! whichever backend is underneath.

use super::{AuthStore, Result, SessionRecord, TokenRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use suite_db::Traced;
use suite_events::Event;
use uuid::Uuid;

#[async_trait]
impl AuthStore for Traced<dyn AuthStore> {
    async fn create_session(
        &self,
        session: &SessionRecord,
        token_hash: &str,
        events: &[Event],
    ) -> Result<()> {
        self.run("INSERT", "sessions", || {
            self.inner().create_session(session, token_hash, events)
        })
        .await
    }
    async fn find_token(&self, hash: &str) -> Result<Option<(TokenRecord, SessionRecord)>> {
        self.run("SELECT", "refresh_tokens", || self.inner().find_token(hash))
            .await
    }
    async fn rotate(
        &self,
        session_id: Uuid,
        old_hash: &str,
        new_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.run("UPDATE", "refresh_tokens", || {
            self.inner().rotate(session_id, old_hash, new_hash, at)
        })
        .await
    }
    async fn touch_successor(
        &self,
        session_id: Uuid,
        successor_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        self.run("UPDATE", "sessions", || {
            self.inner().touch_successor(session_id, successor_hash, at)
        })
        .await
    }
    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>, events: &[Event]) -> Result<bool> {
        self.run("UPDATE", "sessions", || {
            self.inner().revoke_session(id, at, events)
        })
        .await
    }
    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        created_before: DateTime<Utc>,
        at: DateTime<Utc>,
        event_for: &(dyn Fn(Uuid) -> Event + Sync),
    ) -> Result<Vec<Uuid>> {
        self.run("UPDATE", "sessions", || {
            self.inner()
                .revoke_user_sessions(user_id, created_before, at, event_for)
        })
        .await
    }
    async fn get_session(&self, id: Uuid) -> Result<Option<SessionRecord>> {
        self.run("SELECT", "sessions", || self.inner().get_session(id))
            .await
    }
    async fn list_sessions(
        &self,
        user_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>> {
        self.run("SELECT", "sessions", || {
            self.inner()
                .list_sessions(user_id, after, limit, now, idle_cutoff)
        })
        .await
    }
    async fn prune(&self, now: DateTime<Utc>, idle_before: DateTime<Utc>) -> Result<u64> {
        self.run("DELETE", "sessions", || {
            self.inner().prune(now, idle_before)
        })
        .await
    }
}
