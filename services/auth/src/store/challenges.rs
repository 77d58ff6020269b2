//! Login challenges: a sign-in whose password was right, waiting for the
//! user's second factor. One trait, one body of SQL for both databases.

use super::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use suite_db::Traced;
use uuid::Uuid;

/// A challenge as stored (its secret only as a hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// SHA-256 of the challenge, base64url.
    pub hash: String,
    pub user_id: Uuid,
    /// The provider's pending request it belongs to; empty for the API's login.
    pub request_id: String,
    pub user_agent: String,
    pub ip_address: String,
    /// The user service's passkey ceremony for the user's passkeys (empty:
    /// the user has none).
    pub passkey_ceremony: String,
    /// Wrong codes given for it so far.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ChallengeStore: Send + Sync {
    async fn create(&self, c: &ChallengeRecord) -> Result<()>;
    async fn find(&self, hash: &str) -> Result<Option<ChallengeRecord>>;
    /// Counts a wrong code against the challenge.
    async fn fail(&self, hash: &str) -> Result<()>;
    /// Marks the challenge used, if it is still unused, unexpired at `at`
    /// and has fewer than `max_attempts` wrong codes: true if this call did
    /// (of two completions of one challenge, one wins).
    async fn spend(&self, hash: &str, at: DateTime<Utc>, max_attempts: i32) -> Result<bool>;
    /// Deletes challenges that expired before `before`.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64>;
}

macro_rules! challenge_store {
    ($store:ident, $pool:ty, $row:ty) => {
        pub struct $store {
            pub(crate) pool: $pool,
        }

        fn challenge(row: &$row) -> sqlx::Result<ChallengeRecord> {
            Ok(ChallengeRecord {
                hash: row.try_get("hash")?,
                user_id: row.try_get("user_id")?,
                request_id: row.try_get("request_id")?,
                user_agent: row.try_get("user_agent")?,
                ip_address: row.try_get("ip_address")?,
                passkey_ceremony: row.try_get("passkey_ceremony")?,
                attempts: row.try_get("attempts")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                used_at: row.try_get("used_at")?,
            })
        }

        #[async_trait]
        impl ChallengeStore for $store {
            async fn create(&self, c: &ChallengeRecord) -> Result<()> {
                sqlx::query(
                    "INSERT INTO login_challenges (hash, user_id, request_id, user_agent, ip_address, \
                     attempts, created_at, expires_at, used_at, passkey_ceremony) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&c.hash)
                .bind(c.user_id)
                .bind(&c.request_id)
                .bind(&c.user_agent)
                .bind(&c.ip_address)
                .bind(c.attempts)
                .bind(c.created_at)
                .bind(c.expires_at)
                .bind(c.used_at)
                .bind(&c.passkey_ceremony)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn find(&self, hash: &str) -> Result<Option<ChallengeRecord>> {
                let row = sqlx::query(
                    "SELECT hash, user_id, request_id, user_agent, ip_address, attempts, created_at, \
                     expires_at, used_at, passkey_ceremony FROM login_challenges WHERE hash = $1",
                )
                .bind(hash)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.as_ref().map(challenge).transpose()?)
            }

            async fn fail(&self, hash: &str) -> Result<()> {
                sqlx::query("UPDATE login_challenges SET attempts = attempts + 1 WHERE hash = $1")
                    .bind(hash)
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn spend(&self, hash: &str, at: DateTime<Utc>, max_attempts: i32) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE login_challenges SET used_at = $2 \
                     WHERE hash = $1 AND used_at IS NULL AND expires_at > $2 AND attempts < $3",
                )
                .bind(hash)
                .bind(at)
                .bind(max_attempts)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
                let done = sqlx::query("DELETE FROM login_challenges WHERE expires_at < $1")
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
    challenge_store!(PgChallengeStore, sqlx::PgPool, sqlx::postgres::PgRow);
}

mod sqlite {
    use super::*;
    challenge_store!(
        SqliteChallengeStore,
        sqlx::SqlitePool,
        sqlx::sqlite::SqliteRow
    );
}

/// The challenge store on `db`'s pool, every call in a database span.
pub fn open(db: &suite_db::Database) -> std::sync::Arc<dyn ChallengeStore> {
    std::sync::Arc::new(db.store::<dyn ChallengeStore>(
        |pool| std::sync::Arc::new(postgres::PgChallengeStore { pool }),
        |pool| std::sync::Arc::new(sqlite::SqliteChallengeStore { pool }),
    ))
}

#[async_trait]
impl ChallengeStore for Traced<dyn ChallengeStore> {
    async fn create(&self, c: &ChallengeRecord) -> Result<()> {
        self.run("INSERT", "login_challenges", || self.inner().create(c))
            .await
    }
    async fn find(&self, hash: &str) -> Result<Option<ChallengeRecord>> {
        self.run("SELECT", "login_challenges", || self.inner().find(hash))
            .await
    }
    async fn fail(&self, hash: &str) -> Result<()> {
        self.run("UPDATE", "login_challenges", || self.inner().fail(hash))
            .await
    }
    async fn spend(&self, hash: &str, at: DateTime<Utc>, max_attempts: i32) -> Result<bool> {
        self.run("UPDATE", "login_challenges", || {
            self.inner().spend(hash, at, max_attempts)
        })
        .await
    }
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64> {
        self.run("DELETE", "login_challenges", || self.inner().prune(before))
            .await
    }
}
