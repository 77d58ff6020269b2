//! The transactional outbox: a service writes its events into its own
//! `outbox` table in the transaction of the change (the statements of
//! [`sql`]: [`append_pg`], [`append_sqlite`], [`pg_changes_with_events`]), so a change never lacks its event nor an event its
//! change; the [`Relay`] publishes the rows in order and marks them only
//! after the bus has stored them. A crash between the two re-sends the
//! marked-too-late rows, which JetStream drops by their id. Each service's
//! migrations create the table (the same columns on both databases):
//! `seq` (the order), `id`, `event_type`, `subject`, `time`, `traceparent`,
//! `data`; a row is deleted once the bus has stored its event.

mod sql;

pub use sql::{append_pg, append_sqlite, bind_pg_events, pg_changes_with_events};

use crate::{Bus, Event, Stream, resubscribe::Backoff};
use chrono::Utc;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge, histogram::Histogram};
use sqlx::{PgConnection, Row};
use std::{
    sync::{Arc, LazyLock},
    time::Duration,
};
use suite_db::{Database, Migrated, pool::Pool};
use suite_tokens::Revocations;
use tokio::sync::Notify;
use tokio_util::task::AbortOnDropHandle;

/// Rows published per round.
const BATCH: i64 = 256;
/// The PostgreSQL advisory lock that makes one replica's relay the only
/// one publishing a stream at a time (per database): the order per user
/// holds across replicas, and no two replicas send the same row at once.
/// One per stream, for services that share a database.
fn relay_lock(stream: Stream) -> i64 {
    const BASE: i64 = 0x5355_4954_455f_4f00; // "SUITE_O\0"
    BASE + match stream {
        Stream::User => 1,
        Stream::Auth => 2,
    }
}
/// An outbox this deep is backing up (NATS away, or too slow): logged.
const BACKLOG_WARNING: i64 = 1_000;

/// The rows' sequence numbers and events (the same columns on both databases).
macro_rules! pending {
    ($rows:expr) => {{
        let rows = $rows;
        let mut seqs = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            let read = || -> sqlx::Result<(i64, Event)> {
                let event_type: String = r.try_get("event_type")?;
                let source = Stream::of_type(&event_type)
                    .map(Stream::source)
                    .unwrap_or("suite")
                    .to_owned();
                let event = Event {
                    id: r.try_get("id")?,
                    event_type,
                    source,
                    subject: r.try_get("subject")?,
                    time: r.try_get("time")?,
                    traceparent: r.try_get("traceparent")?,
                    data: bytes::Bytes::from(r.try_get::<Vec<u8>, _>("data")?),
                };
                Ok((r.try_get("seq")?, event))
            };
            let (seq, event) = read().map_err(|e| format!("reading the outbox: {e}"))?;
            seqs.push(seq);
            events.push(event);
        }
        (seqs, events)
    }};
}

/// The relay's settings.
#[derive(Debug, Clone, Copy)]
pub struct RelaySettings {
    /// How often the outbox is looked at when nothing wakes the relay (the
    /// service wakes it after each change; other replicas' changes are
    /// found by this).
    pub poll: Duration,
    /// How long the relay lingers after a wake before it reads the outbox:
    /// under load, the changes of that moment go out in one batch (one read,
    /// one delete, pipelined publishes) rather than one round each.
    pub linger: Duration,
    /// How often a replica that is not publishing asks to take over (when
    /// the publishing one is gone).
    pub follower_poll: Duration,
}

impl Default for RelaySettings {
    fn default() -> Self {
        Self {
            // Other replicas' changes are found by this (their commits wake
            // their own relays, which are not publishing).
            poll: Duration::from_millis(50),
            linger: Duration::from_millis(2),
            follower_poll: Duration::from_secs(1),
        }
    }
}

/// The outbox's metrics, shared by every relay of the process.
struct Metrics {
    depth: Gauge,
    published: Counter,
    failures: Counter,
    /// From an event's time to the bus's acknowledgement.
    latency: Histogram,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let registry = suite_telemetry::metrics::metrics();
    Metrics {
        depth: registry.registered(
            "suite_outbox_depth",
            "Events in the outbox not yet published",
            Gauge::default(),
        ),
        published: registry.registered(
            "suite_outbox_published",
            "Events the relay published (the bus acknowledged them)",
            Counter::default(),
        ),
        failures: registry.registered(
            "suite_outbox_publish_failures",
            "Publications that failed (the events wait in the outbox and are retried)",
            Counter::default(),
        ),
        latency: registry.registered(
            "suite_outbox_publish_latency_seconds",
            "From an event's change to the bus's acknowledgement",
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ]),
        ),
    }
});

/// Wakes the relay after a change, so events go out at once rather than
/// at the next poll.
#[derive(Debug, Clone, Default)]
pub struct Wake(Arc<Notify>);

impl Wake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Publishes a service's outbox to the bus.
pub struct Relay {
    pool: Pool,
    /// The outbox exists once the service's migrations have run.
    migrated: Migrated,
    bus: Bus,
    stream: Stream,
    settings: RelaySettings,
    wake: Wake,
}

/// A service's events, wired at start-up: the bus, the waker of the relay
/// that publishes what the service's changes write to its outbox, and the
/// revocations followed from the bus. Dropping it stops both tasks: what
/// in-flight calls wrote is in the outbox, and the next start publishes
/// whatever this one did not.
pub struct Wired {
    pub bus: Bus,
    /// What the service calls after each change it commits.
    pub wake: Wake,
    _relaying: AbortOnDropHandle<()>,
    _following: AbortOnDropHandle<()>,
}

impl crate::EventsArgs {
    /// Connects `service` to the bus, relays `database`'s outbox to `stream`
    /// and feeds `revocations` from the bus.
    pub async fn wire(
        &self,
        service: &str,
        database: &Database,
        stream: Stream,
        revocations: Revocations,
    ) -> Result<Wired, crate::Error> {
        let bus = self.bus(service).await?;
        let (wake, relaying) =
            Relay::new(database, bus.clone(), stream, RelaySettings::default()).spawn();
        let following = crate::revocations::follow(bus.clone(), revocations);
        Ok(Wired {
            bus,
            wake,
            _relaying: AbortOnDropHandle::new(relaying),
            _following: AbortOnDropHandle::new(following),
        })
    }
}

impl Relay {
    /// The relay of `database`'s outbox, which starts reading it once the
    /// database's migrations have run ([`Database::migrated`]).
    pub fn new(database: &Database, bus: Bus, stream: Stream, settings: RelaySettings) -> Self {
        LazyLock::force(&METRICS);
        Self {
            pool: database.pool().clone(),
            migrated: database.migrated(),
            bus,
            stream,
            settings,
            wake: Wake::default(),
        }
    }

    /// Runs the relay on a task of its own: the waker the service calls
    /// after each change, and the task (abort it to stop).
    pub fn spawn(self) -> (Wake, tokio::task::JoinHandle<()>) {
        let wake = self.waker();
        (wake, tokio::spawn(self.run()))
    }

    /// What the service calls after each change it commits.
    pub fn waker(&self) -> Wake {
        self.wake.clone()
    }

    /// Runs until the task is dropped: prepares the stream, waits for the
    /// migrations to have made the outbox (probing for it would fill an
    /// empty database's log with its errors meanwhile), then publishes
    /// whatever is in the outbox, waiting out a bus or database that is
    /// away (the rows wait too).
    pub async fn run(mut self) {
        // The relay is not a subscription (it polls the outbox and takes
        // turns with the other replicas), so it shares only the back-off.
        let mut backoff = Backoff::default();
        while let Err(e) = self.bus.prepare(self.stream).await {
            tracing::warn!(error = %e, "event stream not ready; retrying");
            backoff.wait().await;
        }
        self.migrated.wait().await;
        let mut failing = false;
        let mut leader = None;
        backoff.reset();
        loop {
            match self.round(&mut leader).await {
                Ok(Round::Full) => {
                    failing = false;
                    backoff.reset();
                    continue;
                }
                Ok(Round::Drained) => {
                    if failing {
                        tracing::info!("events are flowing again");
                    }
                    failing = false;
                    backoff.reset();
                    let woken =
                        tokio::time::timeout(self.settings.poll, self.wake.0.notified()).await;
                    if woken.is_ok() && !self.settings.linger.is_zero() {
                        tokio::time::sleep(self.settings.linger).await;
                    }
                }
                Ok(Round::Follower) => {
                    // Another replica publishes; this one stands by.
                    tokio::time::sleep(self.settings.follower_poll).await;
                }
                Err(e) => {
                    METRICS.failures.inc();
                    if !failing {
                        tracing::warn!(error = %e, "publishing events failed; they wait in the outbox");
                    }
                    failing = true;
                    backoff.wait().await;
                }
            }
        }
    }

    /// Publishes one batch; `Full` if there may be more. On PostgreSQL only
    /// the leader publishes: the replica whose relay holds the session-level
    /// advisory lock on a connection of its own (`leader`), so the order per
    /// user holds across replicas; when its process goes, the connection
    /// closes, the lock with it, and another replica takes over.
    async fn round(&self, leader: &mut Option<PgConnection>) -> Result<Round, String> {
        match &self.pool {
            Pool::Postgres(pool) => {
                if leader.is_none() {
                    // Detached: closed when dropped, never back in the pool
                    // with the lock still held.
                    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?.detach();
                    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                        .bind(relay_lock(self.stream))
                        .fetch_one(&mut conn)
                        .await
                        .map_err(|e| e.to_string())?;
                    if !locked {
                        return Ok(Round::Follower);
                    }
                    tracing::info!("this replica publishes the outbox");
                    *leader = Some(conn);
                }
                let Some(conn) = leader.as_mut() else {
                    return Ok(Round::Follower);
                };
                let result = self.pg_batch(conn).await;
                if result.is_err() {
                    // Perhaps the connection: start over with a new one.
                    *leader = None;
                }
                result
            }
            Pool::Sqlite(pool) => {
                // One process owns an SQLite file: no lock to take, and none
                // held while publishing (it would stall every writer).
                let rows = sqlx::query(
                    "SELECT seq, id, event_type, subject, time, traceparent, data FROM outbox \
                     ORDER BY seq LIMIT ?",
                )
                .bind(BATCH)
                .fetch_all(pool)
                .await
                .map_err(|e| e.to_string())?;
                let (seqs, events) = pending!(&rows);
                let (stored, failure) = self.publish(&events).await;
                if stored > 0 {
                    let last = seqs[stored - 1];
                    sqlx::query("DELETE FROM outbox WHERE seq <= ?")
                        .bind(last)
                        .execute(pool)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                let round = finish(rows.len(), failure);
                self.observe_depth(&round).await;
                round
            }
        }
    }

    /// One batch on the leader's connection: two statements and a publish.
    async fn pg_batch(&self, conn: &mut PgConnection) -> Result<Round, String> {
        let rows = sqlx::query(
            "SELECT seq, id, event_type, subject, time, traceparent, data FROM outbox \
             ORDER BY seq LIMIT $1",
        )
        .bind(BATCH)
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| e.to_string())?;
        let (seqs, events) = pending!(&rows);
        let (stored, failure) = self.publish(&events).await;
        if stored > 0 {
            sqlx::query("DELETE FROM outbox WHERE seq = ANY($1)")
                .bind(&seqs[..stored])
                .execute(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
        }
        let round = finish(rows.len(), failure);
        self.observe_depth(&round).await;
        round
    }

    /// Publishes `events`; how many were stored, and why it stopped short.
    async fn publish(&self, events: &[Event]) -> (usize, Option<String>) {
        if events.is_empty() {
            return (0, None);
        }
        let result = self.bus.publish(events).await;
        let now = Utc::now();
        let (stored, failure) = match result {
            Ok(()) => (events.len(), None),
            Err(f) => (f.stored, Some(f.error)),
        };
        for e in &events[..stored] {
            let secs = (now - e.time).num_microseconds().unwrap_or(0) as f64 / 1e6;
            METRICS.latency.observe(secs.max(0.0));
        }
        METRICS.published.inc_by(stored as u64);
        (stored, failure)
    }

    /// The depth gauge: nothing left after a round that drained the outbox;
    /// counted (the outbox may be backing up) after any other.
    async fn observe_depth(&self, round: &Result<Round, String>) {
        if matches!(round, Ok(Round::Drained)) {
            METRICS.depth.set(0);
            return;
        }
        let depth: sqlx::Result<i64> = match &self.pool {
            Pool::Postgres(pool) => {
                sqlx::query_scalar("SELECT count(*) FROM outbox")
                    .fetch_one(pool)
                    .await
            }
            Pool::Sqlite(pool) => {
                sqlx::query_scalar("SELECT count(*) FROM outbox")
                    .fetch_one(pool)
                    .await
            }
        };
        if let Ok(depth) = depth {
            let before = METRICS.depth.set(depth);
            if depth >= BACKLOG_WARNING && before < BACKLOG_WARNING {
                tracing::warn!(
                    depth,
                    "the outbox is backing up: events are not getting out"
                );
            }
        }
    }
}

enum Round {
    /// A whole batch went: there may be more.
    Full,
    /// The outbox is empty.
    Drained,
    /// Another replica publishes the outbox.
    Follower,
}

fn finish(rows: usize, failure: Option<String>) -> Result<Round, String> {
    match failure {
        Some(e) => Err(e),
        None if rows as i64 >= BATCH => Ok(Round::Full),
        None => Ok(Round::Drained),
    }
}
