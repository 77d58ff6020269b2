//! Persistence of users: one trait, with a PostgreSQL and an SQLite
//! implementation chosen by the database URL's scheme.

mod also;
pub mod factors;
mod postgres;
mod sqlite;
mod traced;

pub use also::Also;

use crate::{
    domain::{DisplayName, Email, Username},
    mail::links::TokenRecord,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::{sync::Arc, time::Duration};
use suite_events::Event;
use uuid::Uuid;

/// Live-user counts below this are exact; above it PostgreSQL's estimate
/// (the statistics of the live-users index, kept by autovacuum) is given.
pub const EXACT_COUNT_BELOW: i64 = 10_000;

/// A user as stored, password hash included (it never leaves the service).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub username: Username,
    pub email: Email,
    pub display_name: DisplayName,
    pub roles: Vec<String>,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Bumped by every change; the etag is derived from it.
    pub version: i64,
    /// Sessions started before this instant are over (password change, deletion).
    pub sessions_valid_after: Option<DateTime<Utc>>,
    /// Whether the user proved `email` is theirs.
    pub email_verified: bool,
    /// An address the user asked to change to, until confirmed from it.
    pub pending_email: Option<Email>,
}

impl UserRecord {
    /// The name mail greets the user by: the display name, else the username.
    pub fn greeting_name(&self) -> &str {
        match self.display_name.as_str() {
            "" => self.username.as_str(),
            name => name,
        }
    }
}

/// The failed password checks counted under one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: i64,
    pub last_failure_at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

/// A counter a password check is counted against, with the lock it imposes
/// after its `n`-th failure.
pub struct Counter<'a> {
    pub key: &'a str,
    pub lock: &'a (dyn Fn(i64) -> Duration + Sync),
}

/// A password check's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// A counter (its index in the counters given) is locked until then,
    /// the latest of the locks: do not check the password.
    Locked {
        until: DateTime<Utc>,
        counter: usize,
    },
    /// Counted as a failure on every counter (their states now, in the
    /// order given): check the password.
    Counted(Vec<Failures>),
}

/// What a reservation makes of the counters' stored states (`None`: a
/// counter with no failures yet): the same rule on both databases.
fn reserve(
    counters: &[Counter<'_>],
    stored: &[Option<Failures>],
    at: DateTime<Utc>,
    forget_before: DateTime<Utc>,
) -> Result<std::result::Result<Vec<Failures>, Attempt>> {
    let locked = stored
        .iter()
        .enumerate()
        .filter_map(|(i, f)| Some((f.as_ref()?.locked_until.filter(|until| *until > at)?, i)))
        .max();
    if let Some((until, counter)) = locked {
        return Ok(Err(Attempt::Locked { until, counter }));
    }
    counters
        .iter()
        .zip(stored)
        .map(|(counter, f)| {
            let count = match f {
                Some(f) if f.last_failure_at >= forget_before => f.count + 1,
                _ => 1,
            };
            Ok(Failures {
                count,
                last_failure_at: at,
                locked_until: lock_end(at, (counter.lock)(count))?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Ok)
}

fn lock_end(at: DateTime<Utc>, lock: Duration) -> Result<Option<DateTime<Utc>>> {
    if lock.is_zero() {
        return Ok(None);
    }
    let lock = chrono::Duration::from_std(lock)
        .map_err(|e| StoreError::Other(format!("lock duration: {e}")))?;
    at.checked_add_signed(lock)
        .map(Some)
        .ok_or_else(|| StoreError::Other("lock duration out of range".into()))
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique index refused the write; the field it guards.
    #[error("unique constraint on {0}")]
    Conflict(&'static str),
    /// A database fault (see `suite_db::fault`): Unavailable to clients.
    #[error("database unavailable ({0:?}): {1}")]
    Unavailable(suite_db::Fault, String),
    /// The link token a change redeems was redeemed first by another.
    #[error("the token was used already")]
    TokenSpent,
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                match unique_field(db.constraint(), db.message()) {
                    Some(field) => Self::Conflict(field),
                    // No such index in the migrations: a bug, not the client's fault.
                    None => Self::Other(e.to_string()),
                }
            }
            _ => match suite_db::classify(&e) {
                Some(fault) => Self::Unavailable(fault, e.to_string()),
                None => Self::Other(e.to_string()),
            },
        }
    }
}

suite_db::store_fault!(StoreError, Unavailable);

/// The field a unique index of `users` guards, by its name in the migrations.
/// PostgreSQL names the index (`constraint`); SQLite names none there, but its
/// message does: `UNIQUE constraint failed: index 'users_email_key'` for an
/// index on an expression, `UNIQUE constraint failed: users.id` for a column.
fn unique_field(constraint: Option<&str>, message: &str) -> Option<&'static str> {
    let name = match constraint {
        Some(name) => name,
        None => {
            let failed = message.strip_prefix("UNIQUE constraint failed: ")?;
            failed
                .strip_prefix("index '")
                .and_then(|n| n.strip_suffix('\''))
                .unwrap_or(failed)
        }
    };
    match name {
        "users_username_key" => Some("username"),
        "users_email_key" => Some("email"),
        "users_pkey" | "users.id" => Some("id"),
        _ => None,
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts `user`, writes `events` to the outbox and what `also` holds,
    /// in one transaction.
    async fn insert(&self, user: &UserRecord, events: &[Event], also: &Also<'_>) -> Result<()>;
    /// Inserts each of `users` unless a live user has its username or email
    /// (or an earlier one of `users` took it), each with its event
    /// (`events[i]` is `users[i]`'s; empty: none) in the same transaction.
    /// The ids of those inserted.
    async fn import(&self, users: &[UserRecord], events: &[Event]) -> Result<Vec<Uuid>>;
    async fn get(&self, id: Uuid) -> Result<Option<UserRecord>>;
    /// By lower-cased email or username.
    async fn find_by_login(&self, login: &str) -> Result<Option<UserRecord>>;
    /// Up to `limit` users with ids greater than `after`, in id (creation) order.
    async fn list(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<UserRecord>>;
    /// How many live users there are: exact up to [`EXACT_COUNT_BELOW`],
    /// above it (PostgreSQL) the planner's estimate, so that a list call on a
    /// million users does not count a million rows.
    async fn count(&self) -> Result<i64>;
    /// Writes every mutable column of `user` (with `version` bumped by one)
    /// if the stored version is still `user.version`; false if it is not, or
    /// the user is gone. `events` go to the outbox, and what `also` holds
    /// is written, in the same transaction, if it changed the user (and
    /// `also`'s redemption, if any, was the first: else `TokenSpent`).
    async fn update(&self, user: &UserRecord, events: &[Event], also: &Also<'_>) -> Result<bool>;
    /// Replaces the hash only if it is still `old` (an upgrade after login;
    /// it changes neither version nor sessions).
    async fn replace_hash(&self, id: Uuid, old: &str, new: &str) -> Result<()>;
    /// Marks the user deleted if the version still matches; false otherwise.
    /// `events` go to the outbox in the same transaction, if it did.
    async fn delete(
        &self,
        id: Uuid,
        version: i64,
        at: DateTime<Utc>,
        events: &[Event],
    ) -> Result<bool>;
    /// Writes `events` to the outbox, and what `also` holds, on their own
    /// (their change is already stored: an account lock, taken with the
    /// password check's reservation; or there is no change to the user: a
    /// mailed link).
    async fn append_events(&self, events: &[Event], also: &Also<'_>) -> Result<()>;

    /// The link token stored under `hash`, if any.
    async fn find_token(&self, hash: &[u8]) -> Result<Option<TokenRecord>>;
    /// How many link mails went out since `since`: to `user`, and to
    /// `email` (lower-cased), whoever's.
    async fn recent_links(
        &self,
        user: Uuid,
        email: &str,
        since: DateTime<Utc>,
    ) -> Result<(i64, i64)>;
    /// Whether `user` signed in with `client` before, and with any client.
    async fn knows_client(&self, user: Uuid, client: &str) -> Result<(bool, bool)>;
    /// Deletes link tokens that expired before `before`.
    async fn prune_tokens(&self, before: DateTime<Utc>) -> Result<u64>;

    /// The failure counter under `key`, if any.
    async fn failures(&self, key: &str) -> Result<Option<Failures>>;
    /// Takes a password check's reservation, before the password is hashed:
    /// if any counter is locked at `at`, nothing changes and the latest
    /// lock's end comes back; otherwise the check counts as one more failure
    /// on each counter (from 1 again when its last is older than
    /// `forget_before`), each locked for its `lock(count)`, to be undone by
    /// [`UserStore::release_attempt`] if the password is right. One atomic
    /// step, serialized per counter across replicas (every statement takes
    /// the counters in key order, so none deadlocks), so of N concurrent
    /// guesses only those that find no lock are checked.
    async fn reserve_attempt(
        &self,
        counters: &[Counter<'_>],
        at: DateTime<Utc>,
        forget_before: DateTime<Utc>,
    ) -> Result<Attempt>;
    /// Undoes a right password's reservation: forgets `clear` (the counter
    /// of its account and address) and takes the one failure back from
    /// `decrement` (the account's), unlocking it if it is back within
    /// `decrement_free` failures.
    async fn release_attempt(
        &self,
        clear: &str,
        decrement: &str,
        decrement_free: i64,
    ) -> Result<()>;
    /// Deletes counters last touched before `before` whose lock is over at `now`.
    async fn prune_failures(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64>;
}

use suite_db::{Database, Migrations};

/// The service's migrations, for both databases.
pub static MIGRATIONS: Migrations = Migrations {
    postgres: sqlx::migrate!("./migrations/postgres"),
    sqlite: sqlx::migrate!("./migrations/sqlite"),
    table: "users",
};

/// The store on `db`'s pool, every call in a database span.
pub fn open(db: &Database) -> Arc<dyn UserStore> {
    Arc::new(db.store::<dyn UserStore>(
        |pool| Arc::new(postgres::PgStore { pool }),
        |pool| Arc::new(sqlite::SqliteStore { pool }),
    ))
}

#[cfg(test)]
mod tests {
    use super::unique_field;

    #[test]
    fn unique_violations_name_the_field_by_index_on_both_databases() {
        // PostgreSQL: the constraint is the index's name.
        let pg = "duplicate key value violates unique constraint \"users_email_key\"";
        assert_eq!(unique_field(Some("users_email_key"), pg), Some("email"));
        assert_eq!(
            unique_field(Some("users_username_key"), ""),
            Some("username")
        );
        assert_eq!(unique_field(Some("users_pkey"), ""), Some("id"));
        // SQLite: only the message names it.
        let sqlite = |what: &str| format!("UNIQUE constraint failed: {what}");
        let cases = [
            ("index 'users_username_key'", Some("username")),
            ("index 'users_email_key'", Some("email")),
            ("users.id", Some("id")),
            ("index 'other_key'", None),
        ];
        for (what, field) in cases {
            assert_eq!(unique_field(None, &sqlite(what)), field, "{what}");
        }
        // A name that merely mentions a field is not its index.
        assert_eq!(unique_field(Some("users_email_lower_idx"), ""), None);
        assert_eq!(unique_field(None, "something else about email"), None);
    }
}
