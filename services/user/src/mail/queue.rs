//! The mail outbox as the mailer reads it: letters due, claimed by one
//! replica at a time (in one statement that raises `attempts` and sets a
//! lease), deleted once sent,
//! put off after a temporary failure, set aside after a permanent one. The
//! letters are written by the user store, in the transaction of the change
//! that causes them (`store::Also`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::sync::Arc;
use suite_db::{Database, Traced};
use uuid::Uuid;

use crate::store::Result;

/// A letter waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: Uuid,
    pub kind: String,
    pub to: String,
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub created_at: DateTime<Utc>,
    pub attempts: i32,
}

#[async_trait]
pub trait MailQueue: Send + Sync {
    /// Takes up to `limit` letters due at `now`, oldest first, for a send,
    /// in one statement: each one's attempt count goes up by one (the count
    /// returned is the new one), and none is due again before `until` (the
    /// lease: a replica that dies mid-send leaves them to another after
    /// that). Rows another replica is taking at the same moment are skipped.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<QueuedMail>>;
    /// The server took them: gone from the outbox (and their links with them).
    async fn sent(&self, ids: &[Uuid]) -> Result<()>;
    /// Tried again at `at`, `error` noted.
    async fn retry_at(&self, id: Uuid, at: DateTime<Utc>, error: &str) -> Result<()>;
    /// Never to be tried again (kept, with `error`, for the operator).
    async fn failed(&self, id: Uuid, at: DateTime<Utc>, error: &str) -> Result<()>;
    /// Letters not yet delivered nor given up.
    async fn depth(&self) -> Result<i64>;
}

/// The queue on `db`'s pool, every call in a database span.
pub fn open(db: &Database) -> Arc<dyn MailQueue> {
    Arc::new(db.store::<dyn MailQueue>(
        |pool| Arc::new(PgQueue { pool }),
        |pool| Arc::new(SqliteQueue { pool }),
    ))
}

/// A row of `mail_outbox` (the same columns on both databases).
macro_rules! queued {
    ($row:expr) => {{
        let r = $row;
        QueuedMail {
            id: r.try_get("id")?,
            kind: r.try_get("kind")?,
            to: r.try_get("recipient")?,
            to_name: r.try_get("recipient_name")?,
            subject: r.try_get("subject")?,
            text: r.try_get("text_body")?,
            html: r.try_get("html_body")?,
            created_at: r.try_get("created_at")?,
            attempts: r.try_get("attempts")?,
        }
    }};
}

/// The queue's statements: the same on both databases but for placeholders
/// (`$1` and `?` are both accepted by SQLite; PostgreSQL needs `$n`).
macro_rules! queue_impl {
    ($name:ident, $pool:ty, $claim:expr, $sent:path) => {
        pub struct $name {
            pool: $pool,
        }

        #[async_trait]
        impl MailQueue for $name {
            async fn claim_due(
                &self,
                now: DateTime<Utc>,
                until: DateTime<Utc>,
                limit: i64,
            ) -> Result<Vec<QueuedMail>> {
                let rows = sqlx::query($claim)
                    .bind(now)
                    .bind(until)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                let mut claimed = rows
                    .iter()
                    .map(|r| -> sqlx::Result<QueuedMail> { Ok(queued!(r)) })
                    .collect::<sqlx::Result<Vec<_>>>()?;
                // RETURNING keeps no order: the oldest go first.
                claimed.sort_by_key(|m| (m.created_at, m.id));
                Ok(claimed)
            }

            async fn sent(&self, ids: &[Uuid]) -> Result<()> {
                $sent(&self.pool, ids).await
            }

            async fn retry_at(&self, id: Uuid, at: DateTime<Utc>, error: &str) -> Result<()> {
                sqlx::query(
                    "UPDATE mail_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(at)
                .bind(error)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn failed(&self, id: Uuid, at: DateTime<Utc>, error: &str) -> Result<()> {
                sqlx::query("UPDATE mail_outbox SET failed_at = $2, last_error = $3 WHERE id = $1")
                    .bind(id)
                    .bind(at)
                    .bind(error)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn depth(&self) -> Result<i64> {
                Ok(
                    sqlx::query_scalar("SELECT count(*) FROM mail_outbox WHERE failed_at IS NULL")
                        .fetch_one(&self.pool)
                        .await?,
                )
            }
        }
    };
}

/// The claim: a due row is one another replica is not taking now (its
/// lock skipped, PostgreSQL) and that nobody's lease holds.
macro_rules! claim_sql {
    ($skip_locked:literal) => {
        concat!(
            "UPDATE mail_outbox SET attempts = attempts + 1, next_attempt_at = $2 \
             WHERE id IN (SELECT id FROM mail_outbox WHERE failed_at IS NULL AND next_attempt_at <= $1 \
               ORDER BY next_attempt_at, id LIMIT $3",
            $skip_locked,
            ") AND next_attempt_at <= $1 \
             RETURNING id, kind, recipient, recipient_name, subject, text_body, html_body, created_at, attempts"
        )
    };
}

async fn sent_pg(pool: &sqlx::PgPool, ids: &[Uuid]) -> Result<()> {
    sqlx::query("DELETE FROM mail_outbox WHERE id = ANY($1)")
        .bind(ids)
        .execute(pool)
        .await?;
    Ok(())
}

async fn sent_sqlite(pool: &sqlx::SqlitePool, ids: &[Uuid]) -> Result<()> {
    // No arrays in SQLite: one statement per row, one transaction (one sync).
    let mut tx = pool.begin().await?;
    for id in ids {
        sqlx::query("DELETE FROM mail_outbox WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

queue_impl!(
    PgQueue,
    sqlx::PgPool,
    claim_sql!(" FOR UPDATE SKIP LOCKED"),
    sent_pg
);
queue_impl!(SqliteQueue, sqlx::SqlitePool, claim_sql!(""), sent_sqlite);

#[async_trait]
impl MailQueue for Traced<dyn MailQueue> {
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<QueuedMail>> {
        self.run("UPDATE", "mail_outbox", || {
            self.inner().claim_due(now, until, limit)
        })
        .await
    }
    async fn sent(&self, ids: &[Uuid]) -> Result<()> {
        self.run("DELETE", "mail_outbox", || self.inner().sent(ids))
            .await
    }
    async fn retry_at(&self, id: Uuid, at: DateTime<Utc>, error: &str) -> Result<()> {
        self.run("UPDATE", "mail_outbox", || {
            self.inner().retry_at(id, at, error)
        })
        .await
    }
    async fn failed(&self, id: Uuid, at: DateTime<Utc>, error: &str) -> Result<()> {
        self.run("UPDATE", "mail_outbox", || {
            self.inner().failed(id, at, error)
        })
        .await
    }
    async fn depth(&self) -> Result<i64> {
        self.run("SELECT", "mail_outbox", || self.inner().depth())
            .await
    }
}
