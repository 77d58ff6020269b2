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
    /// A passkey's credential id (unique across users).
    pub credential_id: Option<Vec<u8>>,
}

/// A WebAuthn ceremony between its two calls.
#[derive(Clone, PartialEq, Eq)]
pub struct CeremonyRecord {
    /// SHA-256 of the ceremony's token, base64url.
    pub hash: String,
    /// `register` or `authenticate`.
    pub purpose: String,
    /// Unset for a discoverable sign-in.
    pub user_id: Option<Uuid>,
    /// What the finishing call must present again.
    pub binding: String,
    /// The server's state (webauthn-rs, JSON).
    pub state: String,
    /// The name a registration gives its passkey.
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for CeremonyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CeremonyRecord")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
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
    /// Deletes factors left unconfirmed since before `before`, and
    /// ceremonies that expired before it.
    async fn prune_unconfirmed(&self, before: DateTime<Utc>) -> Result<u64>;
    /// Stores a factor confirmed at once (a passkey), with `codes` (hashes)
    /// replacing the recovery codes if given, and `events`. False if its
    /// credential id is registered already.
    async fn add_confirmed(
        &self,
        factor: &FactorRecord,
        codes: Option<&[Vec<u8>]>,
        events: &[Event],
    ) -> Result<bool>;
    /// Replaces a factor's stored credential (a passkey's counter) and
    /// records its use.
    async fn update_secret(&self, id: Uuid, secret: &[u8], at: DateTime<Utc>) -> Result<()>;
    /// Renames `user`'s factor `id`: false if there is none.
    async fn rename(&self, user: Uuid, id: Uuid, name: &str) -> Result<bool>;
    async fn create_ceremony(&self, ceremony: &CeremonyRecord) -> Result<()>;
    /// Takes the ceremony `hash` (once) if it is unexpired at `at` and was
    /// started with `binding`.
    async fn take_ceremony(
        &self,
        hash: &str,
        binding: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CeremonyRecord>>;
}

/// Every column of `user_factors`.
macro_rules! columns {
    () => {
        "id, user_id, kind, name, secret, created_at, confirmed_at, last_used_at, last_step, credential_id"
    };
}

/// Replaces `$user`'s recovery codes with `$codes` (hashes) inside the
/// transaction `$tx`.
macro_rules! put_codes {
    ($tx:ident, $user:expr, $codes:expr, $at:expr) => {{
        let (user, at) = ($user, $at);
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(user)
            .execute(&mut *$tx)
            .await?;
        for hash in $codes {
            sqlx::query(
                "INSERT INTO recovery_codes (hash, user_id, created_at) VALUES ($1, $2, $3)",
            )
            .bind(hash)
            .bind(user)
            .bind(at)
            .execute(&mut *$tx)
            .await?;
        }
    }};
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
                credential_id: row.try_get("credential_id")?,
            })
        }

        fn ceremony(row: &$row) -> sqlx::Result<CeremonyRecord> {
            Ok(CeremonyRecord {
                hash: row.try_get("hash")?,
                purpose: row.try_get("purpose")?,
                user_id: row.try_get("user_id")?,
                binding: row.try_get("binding")?,
                state: row.try_get("state")?,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
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
                    "INSERT INTO user_factors (", columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
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
                .bind(&f.credential_id)
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
                    put_codes!(tx, user, codes, at);
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
                put_codes!(tx, user, codes, Utc::now());
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
                let ceremonies = sqlx::query("DELETE FROM passkey_ceremonies WHERE expires_at < $1")
                    .bind(before)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() + ceremonies.rows_affected())
            }

            async fn add_confirmed(
                &self,
                f: &FactorRecord,
                codes: Option<&[Vec<u8>]>,
                events: &[Event],
            ) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let inserted = sqlx::query(concat!(
                    "INSERT INTO user_factors (", columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
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
                .bind(&f.credential_id)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    Err(e) => return Err(e.into()),
                }
                if let Some(codes) = codes {
                    put_codes!(tx, f.user_id, codes, f.created_at);
                }
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn update_secret(&self, id: Uuid, secret: &[u8], at: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE user_factors SET secret = $2, last_used_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(secret)
                    .bind(at)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn rename(&self, user: Uuid, id: Uuid, name: &str) -> Result<bool> {
                let done = sqlx::query("UPDATE user_factors SET name = $3 WHERE id = $1 AND user_id = $2")
                    .bind(id)
                    .bind(user)
                    .bind(name)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_ceremony(&self, c: &CeremonyRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO passkey_ceremonies (hash, purpose, user_id, binding, state, name, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(&c.hash)
                .bind(&c.purpose)
                .bind(c.user_id)
                .bind(&c.binding)
                .bind(&c.state)
                .bind(&c.name)
                .bind(c.created_at)
                .bind(c.expires_at)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn take_ceremony(
                &self,
                hash: &str,
                binding: &str,
                at: DateTime<Utc>,
            ) -> Result<Option<CeremonyRecord>> {
                // One statement: of two finishing calls, one gets the state.
                let row = sqlx::query(
                    "UPDATE passkey_ceremonies SET used_at = $3 \
                     WHERE hash = $1 AND binding = $2 AND used_at IS NULL AND expires_at > $3 \
                     RETURNING hash, purpose, user_id, binding, state, name, created_at, expires_at",
                )
                .bind(hash)
                .bind(binding)
                .bind(at)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(ceremony).transpose()?)
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
    async fn add_confirmed(
        &self,
        factor: &FactorRecord,
        codes: Option<&[Vec<u8>]>,
        events: &[Event],
    ) -> Result<bool> {
        self.run("INSERT", "user_factors", || {
            self.inner().add_confirmed(factor, codes, events)
        })
        .await
    }
    async fn update_secret(&self, id: Uuid, secret: &[u8], at: DateTime<Utc>) -> Result<()> {
        self.run("UPDATE", "user_factors", || {
            self.inner().update_secret(id, secret, at)
        })
        .await
    }
    async fn rename(&self, user: Uuid, id: Uuid, name: &str) -> Result<bool> {
        self.run("UPDATE", "user_factors", || {
            self.inner().rename(user, id, name)
        })
        .await
    }
    async fn create_ceremony(&self, ceremony: &CeremonyRecord) -> Result<()> {
        self.run("INSERT", "passkey_ceremonies", || {
            self.inner().create_ceremony(ceremony)
        })
        .await
    }
    async fn take_ceremony(
        &self,
        hash: &str,
        binding: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<CeremonyRecord>> {
        self.run("UPDATE", "passkey_ceremonies", || {
            self.inner().take_ceremony(hash, binding, at)
        })
        .await
    }
}
