//! The user store on an embedded SQLite file (the zero-setup default).

use super::{
    Also, Attempt, Counter, Failures, Result, StoreError, UserRecord, UserStore,
    also::{link_queries, write_also},
    reserve,
};
use crate::{
    domain::{DisplayName, Email, Username},
    mail::links::TokenRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    Row, Sqlite, SqlitePool,
    sqlite::{SqliteArguments, SqliteRow},
};
use suite_events::{Event, outbox};
use uuid::Uuid;

pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

/// A SELECT of every column of `users`, followed by `$rest`.
macro_rules! select_users {
    ($rest:literal) => {
        concat!(
            "SELECT id, username, email, display_name, roles, password_hash, created_at, updated_at, version, sessions_valid_after, email_verified, pending_email FROM users ",
            $rest
        )
    };
}

fn record(row: &SqliteRow) -> std::result::Result<UserRecord, StoreError> {
    let roles: String = row.try_get("roles")?;
    Ok(UserRecord {
        id: row.try_get("id")?,
        // Rows hold only parsed values: read back as they are.
        username: Username::from_stored(row.try_get("username")?),
        email: Email::from_stored(row.try_get("email")?),
        display_name: DisplayName::from_stored(row.try_get("display_name")?),
        roles: serde_json::from_str(&roles)
            .map_err(|e| StoreError::Other(format!("roles column: {e}")))?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        version: row.try_get("version")?,
        sessions_valid_after: row.try_get("sessions_valid_after")?,
        email_verified: row.try_get("email_verified")?,
        pending_email: row
            .try_get::<Option<String>, _>("pending_email")?
            .map(Email::from_stored),
    })
}

type UserQuery<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

/// Binds `u` as the INSERT reads it, or (`created_at: false`) as the
/// UPDATE does: the same order without the creation time, which never
/// changes.
fn bind_user<'q>(query: UserQuery<'q>, u: &UserRecord, created_at: bool) -> UserQuery<'q> {
    let query = query
        .bind(u.id)
        .bind(u.username.as_str())
        .bind(u.email.as_str())
        .bind(u.display_name.as_str())
        .bind(roles_json(&u.roles))
        .bind(&u.password_hash);
    let query = if created_at {
        query.bind(u.created_at)
    } else {
        query
    };
    query
        .bind(u.updated_at)
        .bind(u.version)
        .bind(u.sessions_valid_after)
        .bind(u.email_verified)
        .bind(u.pending_email.as_ref().map(Email::as_str))
}

fn roles_json(roles: &[String]) -> String {
    serde_json::Value::from(roles.to_vec()).to_string()
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert(&self, u: &UserRecord, events: &[Event], also: &Also<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        bind_user(
            sqlx::query(
                "INSERT INTO users (id, username, email, display_name, roles, password_hash, created_at, updated_at, version, sessions_valid_after, email_verified, pending_email) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ),
            u,
            true,
        )
        .execute(&mut *tx)
        .await?;
        outbox::append_sqlite(&mut tx, events).await?;
        write_also!(tx, also);
        tx.commit().await?;
        Ok(())
    }

    async fn import(&self, users: &[UserRecord], events: &[Event]) -> Result<Vec<Uuid>> {
        // One write transaction for the batch: each row goes in unless a
        // live user (or an earlier row) has its username or email.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let mut created = Vec::new();
        for (i, u) in users.iter().enumerate() {
            let done = sqlx::query(
                "INSERT INTO users (id, username, email, display_name, roles, password_hash, created_at, updated_at, version) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(u.id)
            .bind(u.username.as_str())
            .bind(u.email.as_str())
            .bind(u.display_name.as_str())
            .bind(roles_json(&u.roles))
            .bind(&u.password_hash)
            .bind(u.created_at)
            .bind(u.updated_at)
            .bind(u.version)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 1 {
                if let Some(event) = events.get(i) {
                    outbox::append_sqlite(&mut tx, std::slice::from_ref(event)).await?;
                }
                created.push(u.id);
            }
        }
        tx.commit().await?;
        Ok(created)
    }

    async fn get(&self, id: Uuid) -> Result<Option<UserRecord>> {
        let row = sqlx::query(select_users!("WHERE id = ? AND deleted_at IS NULL"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn find_by_login(&self, login: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(select_users!(
            "WHERE (lower(email) = ?1 OR lower(username) = ?1) AND deleted_at IS NULL LIMIT 1"
        ))
        .bind(login)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    async fn list(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<UserRecord>> {
        let rows = sqlx::query(select_users!(
            "WHERE deleted_at IS NULL AND (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record).collect()
    }

    async fn count(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM users WHERE deleted_at IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn update(&self, u: &UserRecord, events: &[Event], also: &Also<'_>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = bind_user(
            sqlx::query(
                "UPDATE users SET username = ?2, email = ?3, display_name = ?4, roles = ?5, password_hash = ?6, \
                 updated_at = ?7, sessions_valid_after = ?9, email_verified = ?10, pending_email = ?11, version = version + 1 \
                 WHERE id = ?1 AND version = ?8 AND deleted_at IS NULL",
            ),
            u,
            false,
        )
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            write_also!(tx, also);
        }
        commit_if_changed(tx, done.rows_affected() == 1, events).await
    }

    async fn replace_hash(&self, id: Uuid, old: &str, new: &str) -> Result<()> {
        sqlx::query("UPDATE users SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2")
            .bind(id)
            .bind(old)
            .bind(new)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete(
        &self,
        id: Uuid,
        version: i64,
        at: DateTime<Utc>,
        events: &[Event],
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE users SET deleted_at = ?3, sessions_valid_after = ?3, updated_at = ?3, version = version + 1 \
             WHERE id = ?1 AND version = ?2 AND deleted_at IS NULL",
        )
        .bind(id)
        .bind(version)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        commit_if_changed(tx, done.rows_affected() == 1, events).await
    }

    async fn append_events(&self, events: &[Event], also: &Also<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        outbox::append_sqlite(&mut tx, events).await?;
        write_also!(tx, also);
        tx.commit().await?;
        Ok(())
    }

    async fn find_token(&self, hash: &[u8]) -> Result<Option<TokenRecord>> {
        find_token(&self.pool, hash).await
    }

    async fn recent_links(
        &self,
        user: Uuid,
        email: &str,
        since: DateTime<Utc>,
    ) -> Result<(i64, i64)> {
        recent_links(&self.pool, user, email, since).await
    }

    async fn knows_client(&self, user: Uuid, client: &str) -> Result<(bool, bool)> {
        knows_client(&self.pool, user, client).await
    }

    async fn prune_tokens(&self, before: DateTime<Utc>) -> Result<u64> {
        prune_tokens(&self.pool, before).await
    }

    async fn failures(&self, key: &str) -> Result<Option<Failures>> {
        let row: Option<(i64, DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
            "SELECT failures, last_failure_at, locked_until FROM password_failures WHERE key = ?1",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(count, last_failure_at, locked_until)| Failures {
            count,
            last_failure_at,
            locked_until,
        }))
    }

    async fn reserve_attempt(
        &self,
        counters: &[Counter<'_>],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<Attempt> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        // The write transaction holds the database's write lock from the
        // start: the checks take their turns.
        let mut stored = Vec::with_capacity(counters.len());
        for c in counters {
            sqlx::query(
                "INSERT INTO password_failures (key, failures, last_failure_at) VALUES (?1, 0, ?2) \
                 ON CONFLICT (key) DO NOTHING",
            )
            .bind(c.key)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let (count, last_failure_at, locked_until): (i64, DateTime<Utc>, Option<DateTime<Utc>>) =
                sqlx::query_as(
                    "SELECT failures, last_failure_at, locked_until FROM password_failures WHERE key = ?1",
                )
                .bind(c.key)
                .fetch_one(&mut *tx)
                .await?;
            stored.push((count > 0).then_some(Failures {
                count,
                last_failure_at,
                locked_until,
            }));
        }
        let next = match reserve(counters, &stored, at, forget_before)? {
            Ok(next) => next,
            Err(locked) => {
                tx.commit().await?;
                return Ok(locked);
            }
        };
        for (c, f) in counters.iter().zip(&next) {
            sqlx::query(
                "UPDATE password_failures SET failures = ?2, last_failure_at = ?3, locked_until = ?4 WHERE key = ?1",
            )
            .bind(c.key)
            .bind(f.count)
            .bind(f.last_failure_at)
            .bind(f.locked_until)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Attempt::Counted(next))
    }

    async fn release_attempt(
        &self,
        clear: &str,
        decrement: &str,
        decrement_free: i64,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM password_failures WHERE key = ?1")
            .bind(clear)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE password_failures SET failures = MAX(failures - 1, 0), \
             locked_until = CASE WHEN failures - 1 <= ?2 THEN NULL ELSE locked_until END \
             WHERE key = ?1",
        )
        .bind(decrement)
        .bind(decrement_free)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn prune_failures(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM password_failures WHERE last_failure_at < ?1 \
             AND (locked_until IS NULL OR locked_until < ?2)",
        )
        .bind(before)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Writes `events` and commits if the conditional write `changed` a row;
/// otherwise rolls back (nothing changed, so nothing happened to tell).
async fn commit_if_changed(
    mut tx: sqlx::Transaction<'_, sqlx::Sqlite>,
    changed: bool,
    events: &[Event],
) -> Result<bool> {
    if !changed {
        return Ok(false);
    }
    outbox::append_sqlite(&mut tx, events).await?;
    tx.commit().await?;
    Ok(true)
}

link_queries!(sqlx::SqlitePool);
