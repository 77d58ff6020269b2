//! The statements that write a service's events into its outbox, in the
//! transaction (or the statement) of the change.

use crate::Event;
use sqlx::{PgConnection, SqliteConnection};

/// The row of each event, inserted in the transaction `$tx` by `$insert`
/// (the same statement on both databases but for its placeholders).
macro_rules! append {
    ($tx:expr, $events:expr, $insert:expr) => {{
        for e in $events {
            sqlx::query($insert)
                .bind(e.id)
                .bind(&e.event_type)
                .bind(&e.subject)
                .bind(e.time)
                .bind(&e.traceparent)
                .bind(e.data.as_ref())
                .execute(&mut *$tx)
                .await?;
        }
        Ok(())
    }};
}

/// Writes `events` to the outbox inside the transaction `tx` (PostgreSQL).
pub async fn append_pg(tx: &mut PgConnection, events: &[Event]) -> sqlx::Result<()> {
    append!(
        tx,
        events,
        "INSERT INTO outbox (id, event_type, subject, time, traceparent, data) \
         VALUES ($1, $2, $3, $4, $5, $6)"
    )
}

/// Writes `events` to the outbox inside the transaction `tx` (SQLite).
pub async fn append_sqlite(tx: &mut SqliteConnection, events: &[Event]) -> sqlx::Result<()> {
    append!(
        tx,
        events,
        "INSERT INTO outbox (id, event_type, subject, time, traceparent, data) \
         VALUES (?, ?, ?, ?, ?, ?)"
    )
}

/// One PostgreSQL statement that makes the change `first` (an INSERT,
/// UPDATE or DELETE whose own parameters are `$1` to `$<params>`) and
/// those of `then` (data-modifying statements that may read the first
/// change's `RETURNING` rows as `changed`, sharing the same parameters),
/// and, if the first touched a row, writes the events bound by
/// [`bind_pg_events`]: atomic as a statement is, and one round trip where a
/// transaction would take four. It returns one row: how many rows the
/// first change touched.
pub fn pg_changes_with_events(first: &str, then: &[&str], params: usize) -> String {
    let p = |i: usize| params + i;
    let then: String = then
        .iter()
        .enumerate()
        .map(|(i, c)| format!("then{i} AS ({c} RETURNING 1), "))
        .collect();
    format!(
        "WITH changed AS ({first} RETURNING *), {then}\
         logged AS (INSERT INTO outbox (id, event_type, subject, time, traceparent, data) \
           SELECT e.id, e.event_type, e.subject, e.time, e.traceparent, e.data \
           FROM unnest(${}::uuid[], ${}::text[], ${}::text[], ${}::timestamptz[], ${}::text[], ${}::bytea[]) \
             AS e(id, event_type, subject, time, traceparent, data) \
           WHERE EXISTS (SELECT 1 FROM changed) RETURNING 1) \
         SELECT count(*) FROM changed",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6)
    )
}

/// Binds `events` as the six arrays [`pg_changes_with_events`] reads.
pub fn bind_pg_events<'q, O>(
    query: sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    events: &[Event],
) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(events.iter().map(|e| e.id).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.event_type.clone())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.subject.clone()).collect::<Vec<_>>())
        .bind(events.iter().map(|e| e.time).collect::<Vec<_>>())
        .bind(
            events
                .iter()
                .map(|e| e.traceparent.clone())
                .collect::<Vec<_>>(),
        )
        .bind(events.iter().map(|e| e.data.to_vec()).collect::<Vec<_>>())
}
