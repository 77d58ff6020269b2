//! Persistence of users: one trait, with a PostgreSQL and an SQLite
//! implementation chosen by the database URL's scheme.

mod postgres;
mod sqlite;
mod traced;

use crate::domain::{DisplayName, Email, Username};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use uuid::Uuid;

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
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique index refused the write; the field it guards.
    #[error("unique constraint on {0}")]
    Conflict(&'static str),
    #[error("database unreachable: {0}")]
    Unavailable(String),
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
            _ if suite_db::is_unavailable(&e) => Self::Unavailable(e.to_string()),
            _ => Self::Other(e.to_string()),
        }
    }
}

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
    async fn insert(&self, user: &UserRecord) -> Result<()>;
    async fn get(&self, id: Uuid) -> Result<Option<UserRecord>>;
    /// By lower-cased email or username.
    async fn find_by_login(&self, login: &str) -> Result<Option<UserRecord>>;
    /// Up to `limit` users with ids greater than `after`, in id (creation) order.
    async fn list(&self, after: Option<Uuid>, limit: i64) -> Result<Vec<UserRecord>>;
    async fn count(&self) -> Result<i64>;
    /// Writes every mutable column of `user` (with `version` bumped by one)
    /// if the stored version is still `user.version`; false if it is not, or
    /// the user is gone.
    async fn update(&self, user: &UserRecord) -> Result<bool>;
    /// Replaces the hash only if it is still `old` (an upgrade after login;
    /// it changes neither version nor sessions).
    async fn replace_hash(&self, id: Uuid, old: &str, new: &str) -> Result<()>;
    /// Marks the user deleted if the version still matches; false otherwise.
    async fn delete(&self, id: Uuid, version: i64, at: DateTime<Utc>) -> Result<bool>;
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
