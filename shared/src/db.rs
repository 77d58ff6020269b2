//! Database plumbing shared by the services' stores: lazily connecting
//! pools for PostgreSQL and SQLite, and which sqlx errors mean "unreachable".

use crate::spans::Span;
use opentelemetry::{Context, KeyValue, trace::SpanKind};
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
};
use std::{borrow::Cow, str::FromStr, time::Duration};

/// Pool settings common to both databases.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a call waits for a connection before it is Unavailable.
    pub acquire_timeout: Duration,
}

/// A PostgreSQL pool that connects on first use, so a service starts (not
/// ready) while the database is down and reconnects by itself.
pub fn postgres_pool(url: &str, s: PoolSettings) -> Result<PgPool, String> {
    PgPoolOptions::new()
        .max_connections(s.max_connections)
        .acquire_timeout(s.acquire_timeout)
        .connect_lazy(url)
        .map_err(|e| e.to_string())
}

/// An SQLite pool on a file created (with its directory) if missing.
pub fn sqlite_pool(url: &str, s: PoolSettings) -> Result<SqlitePool, String> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| e.to_string())?
        .create_if_missing(true)
        // WAL lets readers go on while one writer writes; the busy timeout
        // queues concurrent writers instead of failing them.
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let path = options.get_filename();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    Ok(SqlitePoolOptions::new()
        .max_connections(s.max_connections)
        .acquire_timeout(s.acquire_timeout)
        .connect_lazy_with(options))
}

/// Whether an error means the database cannot be reached (Unavailable to
/// clients), rather than that a statement failed.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// The `db.system.name` of a database URL, for spans.
pub fn system_of(url: &str) -> &'static str {
    if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        "postgresql"
    }
}

/// A client span for one store operation, by the OpenTelemetry database
/// conventions: the system, the operation and the table, never a value. Its
/// parent is the span current on this thread (the RPC being served).
pub fn span(system: &'static str, operation: &'static str, table: &'static str) -> Span {
    Context::map_current(|parent| {
        Span::start(
            SpanKind::Client,
            parent,
            || Cow::Owned(format!("{operation} {table}")),
            || {
                [
                    KeyValue::new("db.system.name", system),
                    KeyValue::new("db.operation.name", operation),
                    KeyValue::new("db.collection.name", table),
                ]
            },
        )
    })
}

/// Runs a store operation inside its span, marking the span failed on error
/// (with the error's kind only: messages may quote values).
pub async fn traced<T, E>(span: Span, op: impl Future<Output = Result<T, E>>) -> Result<T, E> {
    let result = op.await;
    if result.is_err() {
        span.set_error("database error");
    }
    result
}
