//! The auth store on an embedded SQLite file (the zero-setup default).

use super::{AuthStore, Result, SessionRecord, SuccessorKey, TokenRecord};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{Row, Sqlite, SqlitePool, Transaction, sqlite::SqliteRow};
use suite_events::{Event, outbox};
use uuid::Uuid;

pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

/// A SELECT of every column of `sessions`, followed by `$rest`.
macro_rules! select_sessions {
    ($rest:literal) => {
        concat!(
            "SELECT id, user_id, created_at, last_used_at, expires_at, user_agent, ip_address, revoked_at, successor_key, client_id, scope, browser_session_id FROM sessions ",
            $rest
        )
    };
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

/// A session from a row holding every column of `sessions` under its own name.
fn session(row: &SqliteRow) -> sqlx::Result<SessionRecord> {
    Ok(SessionRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        created_at: row.try_get("created_at")?,
        last_used_at: row.try_get("last_used_at")?,
        expires_at: row.try_get("expires_at")?,
        user_agent: row.try_get("user_agent")?,
        ip_address: row.try_get("ip_address")?,
        revoked_at: row.try_get("revoked_at")?,
        successor_key: SuccessorKey(row.try_get("successor_key")?),
        client_id: row.try_get("client_id")?,
        scope: row.try_get("scope")?,
        browser_session_id: row.try_get("browser_session_id")?,
    })
}

/// A token from a row of `find_token`'s join (its `created_at` renamed).
fn token(row: &SqliteRow) -> sqlx::Result<TokenRecord> {
    Ok(TokenRecord {
        hash: row.try_get("token_hash")?,
        session_id: row.try_get("session_id")?,
        created_at: row.try_get("token_created_at")?,
        retired_at: row.try_get("retired_at")?,
    })
}

/// `at + lock`, or `None` for no lock.
#[async_trait]
impl AuthStore for SqliteStore {
    async fn create_session(
        &self,
        s: &SessionRecord,
        token_hash: &str,
        events: &[Event],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, user_agent, ip_address, revoked_at, successor_key, client_id, scope, browser_session_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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

    async fn find_token(&self, hash: &str) -> Result<Option<(TokenRecord, SessionRecord)>> {
        let row = sqlx::query(
            "SELECT t.token_hash, t.session_id, t.created_at AS token_created_at, t.retired_at, \
             s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.user_agent, s.ip_address, s.revoked_at, s.successor_key, s.client_id, s.scope, s.browser_session_id \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id WHERE t.token_hash = ?",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row
            .as_ref()
            .map(|r| Ok::<_, sqlx::Error>((token(r)?, session(r)?)))
            .transpose()?)
    }

    async fn rotate(
        &self,
        session_id: Uuid,
        old_hash: &str,
        new_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        // The row lock makes a concurrent rotation of the same token wait,
        // then find it retired and change nothing.
        let done = sqlx::query(
            "UPDATE refresh_tokens SET retired_at = ?3 \
             WHERE token_hash = ?1 AND session_id = ?2 AND retired_at IS NULL",
        )
        .bind(old_hash)
        .bind(session_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        let done = sqlx::query(
            "UPDATE sessions SET last_used_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        )
        .bind(session_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES (?1, ?2, ?3)",
        )
        .bind(new_hash)
        .bind(session_id)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn touch_successor(
        &self,
        session_id: Uuid,
        successor_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE sessions SET last_used_at = ?3 WHERE id = ?1 AND revoked_at IS NULL \
             AND EXISTS (SELECT 1 FROM refresh_tokens WHERE token_hash = ?2 AND session_id = ?1)",
        )
        .bind(session_id)
        .bind(successor_hash)
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>, events: &[Event]) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        outbox::append_sqlite(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        created_before: DateTime<Utc>,
        at: DateTime<Utc>,
        event_for: &(dyn Fn(Uuid) -> Event + Sync),
    ) -> Result<Vec<Uuid>> {
        let mut tx = self.begin_write().await?;
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM sessions WHERE user_id = ?1 AND created_at < ?2 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(created_before)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::with_capacity(ids.len());
        for id in &ids {
            sqlx::query("UPDATE sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL")
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            events.push(event_for(*id));
        }
        outbox::append_sqlite(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(ids)
    }

    async fn get_session(&self, id: Uuid) -> Result<Option<SessionRecord>> {
        let row = sqlx::query(select_sessions!("WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(session).transpose()?)
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

    async fn prune(&self, now: DateTime<Utc>, idle_before: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM sessions \
             WHERE (revoked_at < ?1 AND (client_id IS NULL OR logout_sent)) \
             OR (revoked_at IS NULL AND (expires_at < ?1 OR last_used_at < ?2)))",
        )
        .bind(now)
        .bind(idle_before)
        .execute(&mut *tx)
        .await?;
        let sessions = sqlx::query(
            // A revoked session of a client stays until its logout token is
            // delivered or given up (oauth::backchannel).
            "DELETE FROM sessions WHERE (revoked_at < ?1 AND (client_id IS NULL OR logout_sent)) \
             OR (revoked_at IS NULL AND (expires_at < ?1 OR last_used_at < ?2))",
        )
        .bind(now)
        .bind(idle_before)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(sessions.rows_affected())
    }
}
