//! The auth store on PostgreSQL.

use super::{
    AuthStore, Result, SessionRecord, SuccessorKey, TokenRecord,
    common::{auth_store, select_sessions},
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row, postgres::PgRow};
use std::sync::LazyLock;
use suite_events::{Event, outbox};
use uuid::Uuid;

pub struct PgStore {
    pub(super) pool: PgPool,
}

impl PgStore {
    /// Starts a write transaction (row locks serialize what must be).
    async fn begin_write(&self) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await
    }
}

auth_store!(PgStore, PgRow, outbox::append_pg, {
    async fn create_session(
        &self,
        s: &SessionRecord,
        token_hash: &str,
        events: &[Event],
    ) -> Result<()> {
        // One statement: the session, its first refresh token and the
        // events, atomically, in one round trip.
        static SQL: LazyLock<String> = LazyLock::new(|| {
            outbox::pg_changes_with_events(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip_address, revoked_at, successor_key, client_id, scope, browser_session_id, amr) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $14)",
                &[
                    "INSERT INTO refresh_tokens (token_hash, session_id, created_at) \
                   SELECT $13, id, created_at FROM changed",
                ],
                14,
            )
        });
        let query = sqlx::query_scalar::<_, i64>(SQL.as_str())
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
            .bind(token_hash)
            .bind(&s.amr);
        outbox::bind_pg_events(query, events)
            .fetch_one(&self.pool)
            .await?;
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
        let rows = sqlx::query(select_sessions!(
            "WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $4 AND last_used_at > $5 \
             AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
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
