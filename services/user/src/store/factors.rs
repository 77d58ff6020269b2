//! Persistence of second factors and recovery codes: one trait, one body of
//! SQL for both databases (`$n` parameters, which SQLite takes too),
//! expanded once per database for its pool and outbox types.

use super::{Also, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use suite_db::Traced;
use suite_events::{Event, outbox};
use uuid::Uuid;

/// A second factor as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct FactorRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `totp`.
    pub kind: String,
    pub name: String,
    /// The sealed secret (see `crate::factors::Sealer`).
    pub secret: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// Unset until a first code confirmed it: only a confirmed factor counts.
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The last TOTP time step a code was accepted for.
    pub last_step: i64,
}

impl std::fmt::Debug for FactorRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactorRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("kind", &self.kind)
            .field("confirmed_at", &self.confirmed_at)
            .finish_non_exhaustive()
    }
}

/// The events of a recovery code's use, given how many are left.
pub type CodeUsedEvents<'a> = &'a (dyn Fn(i64) -> Vec<Event> + Sync);

#[async_trait]
pub trait FactorStore: Send + Sync {
    /// The user's factors, oldest first (unconfirmed ones too).
    async fn list(&self, user: Uuid) -> Result<Vec<FactorRecord>>;
    /// Stores an unconfirmed factor in place of the user's other
    /// unconfirmed ones of its kind.
    async fn begin(&self, factor: &FactorRecord) -> Result<()>;
    /// Confirms the unconfirmed factor `id` of `user`, its code's `step`
    /// used; with `codes` (hashes), they replace the user's recovery codes.
    /// `events` in the same transaction. False if it was confirmed (or
    /// removed) meanwhile.
    async fn confirm(
        &self,
        user: Uuid,
        id: Uuid,
        step: i64,
        at: DateTime<Utc>,
        codes: Option<&[Vec<u8>]>,
        events: &[Event],
    ) -> Result<bool>;
    /// Records a code of time step `step` as used, if no code of that step
    /// or a later one was: false if one was (a replay).
    async fn use_step(&self, id: Uuid, step: i64, at: DateTime<Utc>) -> Result<bool>;
    /// Removes `ids` of `user` (and, if no confirmed factor is left, the
    /// recovery codes), with `events`. The factors removed.
    async fn remove(&self, user: Uuid, ids: &[Uuid], events: &[Event])
    -> Result<Vec<FactorRecord>>;
    /// Replaces `user`'s recovery codes with `codes` (hashes), with `events`.
    async fn replace_codes(&self, user: Uuid, codes: &[Vec<u8>], events: &[Event]) -> Result<()>;
    /// Marks `user`'s unused recovery code `hash` used, with the events
    /// `events_for(left)` and what `also` holds: how many are left, or
    /// `None` if there was no such unused code.
    async fn use_code(
        &self,
        user: Uuid,
        hash: &[u8],
        at: DateTime<Utc>,
        events_for: CodeUsedEvents<'_>,
        also: &Also<'_>,
    ) -> Result<Option<i64>>;
    /// How many unused recovery codes `user` has.
    async fn codes_left(&self, user: Uuid) -> Result<i64>;
    /// Deletes factors left unconfirmed since before `before`.
    async fn prune_unconfirmed(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// Every column of `user_factors`.
macro_rules! columns {
    () => {
        "id, user_id, kind, name, secret, created_at, confirmed_at, last_used_at, last_step"
    };
}

macro_rules! factor_store {
    ($store:ident, $pool:ty, $row:ty, $append:path, $begin:literal) => {
        pub struct $store {
            pub(crate) pool: $pool,
        }

        fn factor(row: &$row) -> sqlx::Result<FactorRecord> {
            Ok(FactorRecord {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                kind: row.try_get("kind")?,
                name: row.try_get("name")?,
                secret: row.try_get("secret")?,
                created_at: row.try_get("created_at")?,
                confirmed_at: row.try_get("confirmed_at")?,
                last_used_at: row.try_get("last_used_at")?,
                last_step: row.try_get("last_step")?,
            })
        }

        #[async_trait]
        impl FactorStore for $store {
            async fn list(&self, user: Uuid) -> Result<Vec<FactorRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ", columns!(), " FROM user_factors WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .bind(user)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(factor).collect::<sqlx::Result<_>>()?)
            }

            async fn begin(&self, f: &FactorRecord) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(
                    "DELETE FROM user_factors WHERE user_id = $1 AND kind = $2 AND confirmed_at IS NULL",
                )
                .bind(f.user_id)
                .bind(&f.kind)
                .execute(&mut *tx)
                .await?;
                sqlx::query(concat!(
                    "INSERT INTO user_factors (", columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                ))
                .bind(f.id)
                .bind(f.user_id)
                .bind(&f.kind)
                .bind(&f.name)
                .bind(&f.secret)
                .bind(f.created_at)
                .bind(f.confirmed_at)
                .bind(f.last_used_at)
                .bind(f.last_step)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn confirm(
                &self,
                user: Uuid,
                id: Uuid,
                step: i64,
                at: DateTime<Utc>,
                codes: Option<&[Vec<u8>]>,
                events: &[Event],
            ) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let done = sqlx::query(
                    "UPDATE user_factors SET confirmed_at = $3, last_used_at = $3, last_step = $4 \
                     WHERE id = $1 AND user_id = $2 AND confirmed_at IS NULL",
                )
                .bind(id)
                .bind(user)
                .bind(at)
                .bind(step)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if let Some(codes) = codes {
                    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                    for hash in codes {
                        sqlx::query(
                            "INSERT INTO recovery_codes (hash, user_id, created_at) VALUES ($1, $2, $3)",
                        )
                        .bind(hash)
                        .bind(user)
                        .bind(at)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn use_step(&self, id: Uuid, step: i64, at: DateTime<Utc>) -> Result<bool> {
                // One statement: of two requests with the same code, one wins.
                let done = sqlx::query(
                    "UPDATE user_factors SET last_step = $2, last_used_at = $3 \
                     WHERE id = $1 AND last_step < $2 AND confirmed_at IS NOT NULL",
                )
                .bind(id)
                .bind(step)
                .bind(at)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn remove(
                &self,
                user: Uuid,
                ids: &[Uuid],
                events: &[Event],
            ) -> Result<Vec<FactorRecord>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let mut removed = Vec::new();
                for id in ids {
                    let row = sqlx::query(concat!(
                        "DELETE FROM user_factors WHERE id = $1 AND user_id = $2 RETURNING ", columns!()
                    ))
                    .bind(id)
                    .bind(user)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if let Some(row) = row {
                        removed.push(factor(&row)?);
                    }
                }
                if removed.is_empty() {
                    tx.rollback().await?;
                    return Ok(removed);
                }
                let left: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM user_factors WHERE user_id = $1 AND confirmed_at IS NOT NULL",
                )
                .bind(user)
                .fetch_one(&mut *tx)
                .await?;
                if left == 0 {
                    sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                        .bind(user)
                        .execute(&mut *tx)
                        .await?;
                }
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(removed)
            }

            async fn replace_codes(
                &self,
                user: Uuid,
                codes: &[Vec<u8>],
                events: &[Event],
            ) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                let at = Utc::now();
                for hash in codes {
                    sqlx::query(
                        "INSERT INTO recovery_codes (hash, user_id, created_at) VALUES ($1, $2, $3)",
                    )
                    .bind(hash)
                    .bind(user)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn use_code(
                &self,
                user: Uuid,
                hash: &[u8],
                at: DateTime<Utc>,
                events_for: CodeUsedEvents<'_>,
                also: &Also<'_>,
            ) -> Result<Option<i64>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let done = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 \
                     WHERE hash = $1 AND user_id = $2 AND used_at IS NULL",
                )
                .bind(hash)
                .bind(user)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let left: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user)
                .fetch_one(&mut *tx)
                .await?;
                $append(&mut tx, &events_for(left)).await?;
                crate::store::also::write_also!(tx, also);
                tx.commit().await?;
                Ok(Some(left))
            }

            async fn codes_left(&self, user: Uuid) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user)
                .fetch_one(&self.pool)
                .await?)
            }

            async fn prune_unconfirmed(&self, before: DateTime<Utc>) -> Result<u64> {
                let done = sqlx::query(
                    "DELETE FROM user_factors WHERE confirmed_at IS NULL AND created_at < $1",
                )
                .bind(before)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

mod postgres {
    use super::*;
    factor_store!(
        PgFactorStore,
        sqlx::PgPool,
        sqlx::postgres::PgRow,
        outbox::append_pg,
        "BEGIN"
    );
}

mod sqlite {
    use super::*;
    // The write lock from the start: a read-then-write transaction never
    // meets SQLITE_BUSY on upgrading.
    factor_store!(
        SqliteFactorStore,
        sqlx::SqlitePool,
        sqlx::sqlite::SqliteRow,
        outbox::append_sqlite,
        "BEGIN IMMEDIATE"
    );
}

/// The factor store on `db`'s pool, every call in a database span.
pub fn open(db: &suite_db::Database) -> std::sync::Arc<dyn FactorStore> {
    std::sync::Arc::new(db.store::<dyn FactorStore>(
        |pool| std::sync::Arc::new(postgres::PgFactorStore { pool }),
        |pool| std::sync::Arc::new(sqlite::SqliteFactorStore { pool }),
    ))
}

#[async_trait]
impl FactorStore for Traced<dyn FactorStore> {
    async fn list(&self, user: Uuid) -> Result<Vec<FactorRecord>> {
        self.run("SELECT", "user_factors", || self.inner().list(user))
            .await
    }
    async fn begin(&self, factor: &FactorRecord) -> Result<()> {
        self.run("INSERT", "user_factors", || self.inner().begin(factor))
            .await
    }
    async fn confirm(
        &self,
        user: Uuid,
        id: Uuid,
        step: i64,
        at: DateTime<Utc>,
        codes: Option<&[Vec<u8>]>,
        events: &[Event],
    ) -> Result<bool> {
        self.run("UPDATE", "user_factors", || {
            self.inner().confirm(user, id, step, at, codes, events)
        })
        .await
    }
    async fn use_step(&self, id: Uuid, step: i64, at: DateTime<Utc>) -> Result<bool> {
        self.run("UPDATE", "user_factors", || {
            self.inner().use_step(id, step, at)
        })
        .await
    }
    async fn remove(
        &self,
        user: Uuid,
        ids: &[Uuid],
        events: &[Event],
    ) -> Result<Vec<FactorRecord>> {
        self.run("DELETE", "user_factors", || {
            self.inner().remove(user, ids, events)
        })
        .await
    }
    async fn replace_codes(&self, user: Uuid, codes: &[Vec<u8>], events: &[Event]) -> Result<()> {
        self.run("INSERT", "recovery_codes", || {
            self.inner().replace_codes(user, codes, events)
        })
        .await
    }
    async fn use_code(
        &self,
        user: Uuid,
        hash: &[u8],
        at: DateTime<Utc>,
        events_for: CodeUsedEvents<'_>,
        also: &Also<'_>,
    ) -> Result<Option<i64>> {
        self.run("UPDATE", "recovery_codes", || {
            self.inner().use_code(user, hash, at, events_for, also)
        })
        .await
    }
    async fn codes_left(&self, user: Uuid) -> Result<i64> {
        self.run("SELECT", "recovery_codes", || self.inner().codes_left(user))
            .await
    }
    async fn prune_unconfirmed(&self, before: DateTime<Utc>) -> Result<u64> {
        self.run("DELETE", "user_factors", || {
            self.inner().prune_unconfirmed(before)
        })
        .await
    }
}
