//! Persistence of sessions (refresh-token families): one trait, with PostgreSQL and SQLite implementations chosen by
//! the database URL's scheme.

pub mod challenges;
mod common;
mod postgres;
mod sqlite;
mod traced;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use suite_events::Event;
use uuid::Uuid;

/// A session: one login, and the chain of refresh tokens rotated from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// Last login or refresh; the idle timeout runs from here.
    pub last_used_at: DateTime<Utc>,
    /// The absolute end of the session.
    pub expires_at: DateTime<Utc>,
    pub user_agent: String,
    pub ip_address: String,
    pub revoked_at: Option<DateTime<Utc>>,
    /// Keys the chain of refresh tokens (see `refresh::successor`).
    pub successor_key: SuccessorKey,
    /// The OAuth client the session was granted to; `None` for the suite's
    /// own first-party logins.
    pub client_id: Option<String>,
    /// The scopes granted to that client, space-separated.
    pub scope: Option<String>,
    /// The browser (SSO) session the grant came from, which ends it too.
    pub browser_session_id: Option<Uuid>,
    /// How the user signed in (RFC 8176 values, space-separated); empty for
    /// sessions from before second factors.
    pub amr: String,
}

/// A session's secret for deriving refresh-token successors; never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct SuccessorKey(pub Vec<u8>);

impl std::fmt::Debug for SuccessorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SuccessorKey([redacted])")
    }
}

/// One refresh token of a session, known only by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// SHA-256 of the token, base64url without padding.
    pub hash: String,
    pub session_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// When a refresh exchanged it for its successor.
    pub retired_at: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A database fault (see `suite_db::fault`): Unavailable to clients.
    #[error("database unavailable ({0:?}): {1}")]
    Unavailable(suite_db::Fault, String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match suite_db::classify(&e) {
            Some(fault) => Self::Unavailable(fault, e.to_string()),
            None => Self::Other(e.to_string()),
        }
    }
}

suite_db::store_fault!(StoreError, Unavailable);

pub type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait AuthStore: Send + Sync {
    /// Stores a new session and its first refresh token, and writes
    /// `events` to the outbox, atomically.
    async fn create_session(
        &self,
        session: &SessionRecord,
        token_hash: &str,
        events: &[Event],
    ) -> Result<()>;
    /// The token with this hash and its session.
    async fn find_token(&self, hash: &str) -> Result<Option<(TokenRecord, SessionRecord)>>;
    /// Atomically: retires `old_hash` if it is not retired yet, adds
    /// `new_hash` to the session and sets its `last_used_at` to `at`. False,
    /// with nothing changed, if the session is revoked or another call
    /// retired `old_hash` first.
    async fn rotate(
        &self,
        session_id: Uuid,
        old_hash: &str,
        new_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Sets the session's `last_used_at` to `at` if it lives and holds the
    /// token `successor_hash` (a redemption inside the grace window, which
    /// hands out the successor already there). False otherwise.
    async fn touch_successor(
        &self,
        session_id: Uuid,
        successor_hash: &str,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Marks the session revoked (if it is not already), with `events` in
    /// the same transaction; true if this call did.
    async fn revoke_session(&self, id: Uuid, at: DateTime<Utc>, events: &[Event]) -> Result<bool>;
    /// Revokes every session of `user_id` begun before `created_before`
    /// and not revoked yet, each with its event (`event_for` its id), in
    /// one transaction; returns their ids.
    async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        created_before: DateTime<Utc>,
        at: DateTime<Utc>,
        event_for: &(dyn Fn(Uuid) -> Event + Sync),
    ) -> Result<Vec<Uuid>>;
    async fn get_session(&self, id: Uuid) -> Result<Option<SessionRecord>>;
    /// Live sessions of a user (not revoked, `expires_at` after `now`,
    /// `last_used_at` after `idle_cutoff`) with ids after `after`, in id order.
    async fn list_sessions(
        &self,
        user_id: Uuid,
        after: Option<Uuid>,
        limit: i64,
        now: DateTime<Utc>,
        idle_cutoff: DateTime<Utc>,
    ) -> Result<Vec<SessionRecord>>;

    /// Deletes what can never matter again: sessions (with their tokens)
    /// revoked or expired before `now` or unused since `idle_before`.
    /// Returns how many went.
    async fn prune(&self, now: DateTime<Utc>, idle_before: DateTime<Utc>) -> Result<u64>;
}

use suite_db::{Database, Migrations};

/// The service's migrations, for both databases.
pub static MIGRATIONS: Migrations = Migrations {
    postgres: sqlx::migrate!("./migrations/postgres"),
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    table: "sessions",
};

/// The store on `db`'s pool, every call in a database span.
pub fn open(db: &Database) -> Arc<dyn AuthStore> {
    Arc::new(db.store::<dyn AuthStore>(
        |pool| Arc::new(postgres::PgStore { pool }),
        |pool| Arc::new(sqlite::SqliteStore { pool }),
    ))
}
