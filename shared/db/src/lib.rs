//! The services' database plumbing: the database URL ([`DatabaseUrl`]),
//! lazily connecting pools for PostgreSQL and SQLite with their metrics
//! ([`pool`]), a service's migrations and readiness ([`Database`]), which
//! sqlx errors are faults (Unavailable, never internal: [`fault`]), the
//! breaker that fails calls fast while the database is down ([`health`]),
//! and a client span per store operation.
#![forbid(unsafe_code)]

mod database;
pub mod fault;
pub mod health;
pub mod pool;
mod url;

pub use database::{Database, Migrated, Migrations, Traced};
pub use fault::{Fault, StoreFault, classify};
pub use pool::{PoolArgs, PoolSettings};
pub use url::{Backend, DatabaseUrl};

use opentelemetry::{Context, KeyValue, trace::SpanKind};
use std::borrow::Cow;
use suite_telemetry::spans::Span;

/// Whether an error is a database fault (Unavailable to clients: see
/// [`fault`]), rather than the statement's own failure.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    classify(e).is_some()
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
