//! Personal access tokens as stored: one trait, one body of SQL for both
//! databases (`$n` parameters, which SQLite takes too). Every change writes
//! its events to the outbox in its transaction.

use crate::store::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use suite_db::Traced;
use suite_events::{Event, outbox};
use uuid::Uuid;

/// A token as stored (its secret only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub name: String,
    /// The token's first characters, shown in lists.
    pub prefix: String,
    /// SHA-256 of the token, base64url.
    pub secret_hash: String,
    /// Space-separated.
    pub scopes: String,
    /// How its creator had signed in, space-separated.
    pub amr: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The event a revocation writes for one token.
pub type EventFor<'a> = &'a (dyn Fn(&TokenRecord) -> Event + Send + Sync);

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn create(&self, t: &TokenRecord, events: &[Event]) -> Result<()>;
    /// The token whose secret hashes to `hash`, in any state.
    async fn find(&self, hash: &str) -> Result<Option<TokenRecord>>;
    async fn get(&self, id: Uuid) -> Result<Option<TokenRecord>>;
    /// A user's unrevoked tokens, newest first.
    async fn list(&self, user_id: Uuid) -> Result<Vec<TokenRecord>>;
    /// Revokes the token at `at` if it is not yet: true if this call did.
    async fn revoke(&self, id: Uuid, at: DateTime<Utc>, events: &[Event]) -> Result<bool>;
    /// Revokes every unrevoked token of `user_id` created before `before`,
    /// with an event each: the tokens revoked.
    async fn revoke_user(
        &self,
        user_id: Uuid,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
        event_for: EventFor<'_>,
    ) -> Result<Vec<TokenRecord>>;
    /// Records a use at `at` unless one after `stale_before` is recorded:
    /// at most one write a minute per token, however busy.
    async fn touch(&self, id: Uuid, at: DateTime<Utc>, stale_before: DateTime<Utc>) -> Result<()>;
    /// Deletes tokens revoked or expired before `before`.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64>;
}

macro_rules! columns {
    () => {
        "id, user_id, name, prefix, secret_hash, scopes, amr, created_at, expires_at, \
         last_used_at, revoked_at"
    };
}

macro_rules! token_store {
    ($store:ident, $pool:ty, $row:ty, $append:path, $begin:literal) => {
        pub struct $store {
            pub(crate) pool: $pool,
        }

        fn token(row: &$row) -> sqlx::Result<TokenRecord> {
            Ok(TokenRecord {
                id: row.try_get("id")?,
                user_id: row.try_get("user_id")?,
                name: row.try_get("name")?,
                prefix: row.try_get("prefix")?,
                secret_hash: row.try_get("secret_hash")?,
                scopes: row.try_get("scopes")?,
                amr: row.try_get("amr")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                last_used_at: row.try_get("last_used_at")?,
                revoked_at: row.try_get("revoked_at")?,
            })
        }

        #[async_trait]
        impl TokenStore for $store {
            async fn create(&self, t: &TokenRecord, events: &[Event]) -> Result<()> {
                let mut tx = self.pool.begin_with($begin).await?;
                sqlx::query(concat!(
                    "INSERT INTO personal_access_tokens (",
                    columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                ))
                .bind(t.id)
                .bind(t.user_id)
                .bind(&t.name)
                .bind(&t.prefix)
                .bind(&t.secret_hash)
                .bind(&t.scopes)
                .bind(&t.amr)
                .bind(t.created_at)
                .bind(t.expires_at)
                .bind(t.last_used_at)
                .bind(t.revoked_at)
                .execute(&mut *tx)
                .await?;
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn find(&self, hash: &str) -> Result<Option<TokenRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM personal_access_tokens WHERE secret_hash = $1"
                ))
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(token).transpose()?)
            }

            async fn get(&self, id: Uuid) -> Result<Option<TokenRecord>> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM personal_access_tokens WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(token).transpose()?)
            }

            async fn list(&self, user_id: Uuid) -> Result<Vec<TokenRecord>> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM personal_access_tokens WHERE user_id = $1 AND revoked_at IS NULL \
                     ORDER BY created_at DESC, id DESC"
                ))
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.iter().map(token).collect::<sqlx::Result<_>>()?)
            }

            async fn revoke(&self, id: Uuid, at: DateTime<Utc>, events: &[Event]) -> Result<bool> {
                let mut tx = self.pool.begin_with($begin).await?;
                let done = sqlx::query(
                    "UPDATE personal_access_tokens SET revoked_at = $2 \
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                $append(&mut tx, events).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn revoke_user(
                &self,
                user_id: Uuid,
                before: DateTime<Utc>,
                at: DateTime<Utc>,
                event_for: EventFor<'_>,
            ) -> Result<Vec<TokenRecord>> {
                let mut tx = self.pool.begin_with($begin).await?;
                let rows = sqlx::query(concat!(
                    "UPDATE personal_access_tokens SET revoked_at = $3 \
                     WHERE user_id = $1 AND created_at < $2 AND revoked_at IS NULL RETURNING ",
                    columns!()
                ))
                .bind(user_id)
                .bind(before)
                .bind(at)
                .fetch_all(&mut *tx)
                .await?;
                let revoked = rows.iter().map(token).collect::<sqlx::Result<Vec<_>>>()?;
                let events: Vec<Event> = revoked.iter().map(event_for).collect();
                $append(&mut tx, &events).await?;
                tx.commit().await?;
                Ok(revoked)
            }

            async fn touch(
                &self,
                id: Uuid,
                at: DateTime<Utc>,
                stale_before: DateTime<Utc>,
            ) -> Result<()> {
                sqlx::query(
                    "UPDATE personal_access_tokens SET last_used_at = $2 \
                     WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
                )
                .bind(id)
                .bind(at)
                .bind(stale_before)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
                Ok(sqlx::query(
                    "DELETE FROM personal_access_tokens WHERE revoked_at < $1 OR expires_at < $1",
                )
                .bind(before)
                .execute(&self.pool)
                .await?
                .rows_affected())
            }
        }
    };
}

mod postgres {
    use super::*;
    token_store!(
        PgTokenStore,
        sqlx::PgPool,
        sqlx::postgres::PgRow,
        outbox::append_pg,
        "BEGIN"
    );
}

mod sqlite {
    use super::*;
    token_store!(
        SqliteTokenStore,
        sqlx::SqlitePool,
        sqlx::sqlite::SqliteRow,
        outbox::append_sqlite,
        "BEGIN IMMEDIATE"
    );
}

/// The token store on `db`'s pool, every call in a database span.
pub fn open(db: &suite_db::Database) -> std::sync::Arc<dyn TokenStore> {
    std::sync::Arc::new(db.store::<dyn TokenStore>(
        |pool| std::sync::Arc::new(postgres::PgTokenStore { pool }),
        |pool| std::sync::Arc::new(sqlite::SqliteTokenStore { pool }),
    ))
}

const TABLE: &str = "personal_access_tokens";

#[async_trait]
impl TokenStore for Traced<dyn TokenStore> {
    async fn create(&self, t: &TokenRecord, events: &[Event]) -> Result<()> {
        self.run("INSERT", TABLE, || self.inner().create(t, events))
            .await
    }
    async fn find(&self, hash: &str) -> Result<Option<TokenRecord>> {
        self.run("SELECT", TABLE, || self.inner().find(hash)).await
    }
    async fn get(&self, id: Uuid) -> Result<Option<TokenRecord>> {
        self.run("SELECT", TABLE, || self.inner().get(id)).await
    }
    async fn list(&self, user_id: Uuid) -> Result<Vec<TokenRecord>> {
        self.run("SELECT", TABLE, || self.inner().list(user_id))
            .await
    }
    async fn revoke(&self, id: Uuid, at: DateTime<Utc>, events: &[Event]) -> Result<bool> {
        self.run("UPDATE", TABLE, || self.inner().revoke(id, at, events))
            .await
    }
    async fn revoke_user(
        &self,
        user_id: Uuid,
        before: DateTime<Utc>,
        at: DateTime<Utc>,
        event_for: EventFor<'_>,
    ) -> Result<Vec<TokenRecord>> {
        self.run("UPDATE", TABLE, || {
            self.inner().revoke_user(user_id, before, at, event_for)
        })
        .await
    }
    async fn touch(&self, id: Uuid, at: DateTime<Utc>, stale_before: DateTime<Utc>) -> Result<()> {
        self.run("UPDATE", TABLE, || self.inner().touch(id, at, stale_before))
            .await
    }
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
        self.run("DELETE", TABLE, || self.inner().prune(before))
            .await
    }
}
