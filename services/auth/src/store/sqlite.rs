//! The auth store on an embedded SQLite file (the zero-setup default).

use super::{
    AuthStore, Result, SessionRecord, SuccessorKey, TokenRecord,
    common::{auth_store, select_sessions},
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, Sqlite, SqlitePool, Transaction, sqlite::SqliteRow};
use suite_events::{Event, outbox};
use uuid::Uuid;

pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

impl SqliteStore {
    /// Starts a write transaction holding the database's write lock from the
    /// start (waiting up to the busy timeout for it), so that concurrent
    /// read-then-write transactions serialize instead of failing with
    /// SQLITE_BUSY when upgrading a read lock.
    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }
}

auth_store!(SqliteStore, SqliteRow, outbox::append_sqlite, {
    async fn create_session(
        &self,
        s: &SessionRecord,
        token_hash: &str,
        events: &[Event],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip_address, revoked_at, successor_key, client_id, scope, browser_session_id, amr) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id)
        .bind(s.user_id)
        .bind(s.created_at)
        .bind(s.last_used_at)
        .bind(s.expires_at)
        .bind(&s.user_agent)
        .bind(&s.ip_address)
        .bind(s.revoked_at)
        .bind(&s.successor_key.0)
        .bind(&s.client_id)
        .bind(&s.scope)
        .bind(s.browser_session_id)
        .bind(&s.amr)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (?, ?, ?)",
        )
        .bind(token_hash)
        .bind(s.id)
        .bind(s.created_at)
        .execute(&mut *tx)
        .await?;
        outbox::append_sqlite(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_sessions(
        &self,
        user_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>> {
        // Timestamps are RFC 3339 text in UTC, so they compare as strings.
        let rows = sqlx::query(select_sessions!(
            "WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?4 AND last_used_at > ?5 \
             AND (?2 IS NULL OR id > ?2) ORDER BY id LIMIT ?3"
        ))
        .bind(user_id)
        .bind(after)
        .bind(limit)
        .bind(now)
        .bind(idle_cutoff)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(session).collect::<sqlx::Result<_>>()?)
    }
});
