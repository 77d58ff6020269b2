//! The suite's events. Each change a service makes is an [`Event`]: a
//! protobuf message in a CloudEvents envelope, written to the service's
//! outbox in the change's own transaction (feature `outbox`: its SQL and
//! the relay) and published by the relay to the [`Bus`]: NATS JetStream
//! with `NATS_URL` ([`nats`]), else an in-process bus ([`local`], kept on
//! disk by its [`journal`]). Subscribers read from a point in the past and
//! are told when they have caught up ([`subscription`]), and [`resubscribe`]
//! keeps a follower going across broken subscriptions; [`revocations`] turns
//! the events into what a token verifier must refuse; the event-stream RPCs
//! serve them as [`feed`] has them, within the stream [`slots`].
#![forbid(unsafe_code)]

pub mod event;
pub mod feed;
pub mod journal;
pub mod local;
pub mod nats;
#[cfg(feature = "outbox")]
pub mod outbox;
pub mod resubscribe;
pub mod revocations;
pub mod slots;
pub mod subscription;

pub use event::{Event, Stream};
pub use local::LocalBus;
pub use nats::{Deliveries, Delivery, NatsBus};
pub use subscription::{Filter, Item, Start, Subscription};

use futures_util::StreamExt;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("event bus: {0}")]
    Bus(String),
}

/// A publication that stopped: the first `stored` events were stored.
#[derive(Debug, thiserror::Error)]
#[error("publishing events failed after {stored}: {error}")]
pub struct PublishFailure {
    pub stored: usize,
    pub error: String,
}

/// The events' configuration, from the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct EventsArgs {
    /// NATS with JetStream, e.g. `nats://nats:4222`. Unset: an in-process
    /// bus (events reach only this process's subscribers).
    #[arg(long, env = "NATS_URL")]
    pub nats_url: Option<String>,
    /// How long an attempt to connect to NATS may take.
    #[arg(long, env = "NATS_CONNECT_TIMEOUT_SECS", default_value_t = 5)]
    pub nats_connect_timeout_secs: u64,
    /// How long a publication waits for JetStream's acknowledgement.
    #[arg(long, env = "NATS_PUBLISH_TIMEOUT_SECS", default_value_t = 5)]
    pub nats_publish_timeout_secs: u64,
    /// How long a stream keeps an event (at least an access token's lifetime:
    /// verifiers read that much back at start-up). Default: 7 days.
    #[arg(long, env = "EVENTS_MAX_AGE_SECS", default_value_t = 7 * 24 * 3600)]
    pub events_max_age_secs: u64,
    /// How many bytes a stream keeps at most (oldest dropped first).
    #[arg(long, env = "EVENTS_MAX_BYTES", default_value_t = 1 << 30)]
    pub events_max_bytes: i64,
    /// JetStream replicas of each stream (1, 3 or 5; at most the cluster's size).
    #[arg(long, env = "EVENTS_REPLICAS", default_value_t = 1)]
    pub events_replicas: usize,
    /// For how long JetStream drops a re-sent event by its id.
    #[arg(long, env = "EVENTS_DUPLICATE_WINDOW_SECS", default_value_t = 600)]
    pub events_duplicate_window_secs: u64,
    /// Without NATS: a file where the in-process bus keeps its recent past
    /// (an hour), so that a restart remembers it: revocations above all
    /// (a logged-out token stays refused), and where streams resume. The
    /// launcher keeps one in its data directory. Unset: memory only.
    #[arg(long, env = "EVENTS_JOURNAL")]
    pub events_journal: Option<std::path::PathBuf>,
    /// The launcher's in-process bus, shared by the services it runs.
    #[arg(skip)]
    pub local: Option<LocalBus>,
    /// Whether changes write events at all. Only a benchmark's baseline
    /// turns it off (no variable sets it): without events nothing learns of
    /// a change.
    #[arg(skip = true)]
    pub record: bool,
}

impl Default for EventsArgs {
    fn default() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            events: EventsArgs,
        }
        Only::parse_from(["events"]).events
    }
}

/// A stream's limits, as configured.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    pub connect_timeout: Duration,
    pub publish_timeout: Duration,
    pub max_age: Duration,
    pub max_bytes: i64,
    pub replicas: usize,
    pub duplicate_window: Duration,
}

impl EventsArgs {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(url) = &self.nats_url
            && !(url.starts_with("nats://") || url.starts_with("tls://") || url.contains(':'))
        {
            return Err(format!(
                "NATS_URL {url:?} is not a NATS URL (nats://host:4222)"
            ));
        }
        if self.events_duplicate_window_secs > self.events_max_age_secs {
            return Err("EVENTS_DUPLICATE_WINDOW_SECS must not exceed EVENTS_MAX_AGE_SECS".into());
        }
        if !matches!(self.events_replicas, 1 | 3 | 5) {
            return Err("EVENTS_REPLICAS must be 1, 3 or 5".into());
        }
        Ok(())
    }

    pub fn settings(&self) -> StreamSettings {
        StreamSettings {
            connect_timeout: Duration::from_secs(self.nats_connect_timeout_secs.max(1)),
            publish_timeout: Duration::from_secs(self.nats_publish_timeout_secs.max(1)),
            max_age: Duration::from_secs(self.events_max_age_secs),
            max_bytes: self.events_max_bytes,
            replicas: self.events_replicas,
            duplicate_window: Duration::from_secs(self.events_duplicate_window_secs),
        }
    }

    /// The bus: NATS if configured, else the launcher's in-process bus, else
    /// one of this process's own.
    pub async fn bus(&self, client_name: &str) -> Result<Bus, Error> {
        match &self.nats_url {
            Some(url) => Ok(Bus::Nats(Box::new(
                NatsBus::connect(url, client_name, self.settings()).await?,
            ))),
            None => Ok(Bus::Local(match (&self.local, &self.events_journal) {
                (Some(local), _) => local.clone(),
                (None, Some(path)) => LocalBus::persistent(path)?,
                (None, None) => LocalBus::default(),
            })),
        }
    }
}

/// Where events go and come from.
#[derive(Debug, Clone)]
pub enum Bus {
    // Boxed: the JetStream context is large, and a bus is cloned into tasks.
    Nats(Box<NatsBus>),
    Local(LocalBus),
}

impl Bus {
    /// Makes `stream` ready for its publisher (creates or updates it).
    pub async fn prepare(&self, stream: Stream) -> Result<(), Error> {
        match self {
            Self::Nats(n) => n.prepare(stream).await,
            Self::Local(_) => Ok(()),
        }
    }

    /// Publishes `events` in order; returns once the bus holds them all.
    pub async fn publish(&self, events: &[Event]) -> Result<(), PublishFailure> {
        match self {
            Self::Nats(n) => n.publish(events).await,
            Self::Local(l) => l.publish(events).await.map_err(|e| PublishFailure {
                stored: 0,
                error: e.to_string(),
            }),
        }
    }

    /// The events `filter` selects, from `start`.
    pub async fn subscribe(&self, filter: Filter, start: Start) -> Result<Subscription, Error> {
        let raw = match self {
            Self::Nats(n) => n.subscribe(filter, &start).await?,
            Self::Local(l) => l.subscribe(filter, &start)?,
        };
        Ok(Subscription::new(raw, &start))
    }

    /// The durable consumer `name` of `stream`'s events that `filter`
    /// selects. In-process: from now on (nothing outlives the process).
    pub async fn durable(
        &self,
        name: &str,
        stream: Stream,
        filter: Filter,
    ) -> Result<Deliveries, Error> {
        match self {
            Self::Nats(n) => n.durable(name, stream, filter).await,
            Self::Local(l) => {
                let filter = Filter {
                    streams: vec![stream],
                    ..filter
                };
                let raw = l.subscribe(filter, &Start::New)?;
                Ok(Box::pin(raw.filter_map(|item| {
                    std::future::ready(match item {
                        Ok(Item::Event { event, .. }) => Some(Ok(Delivery::local(event))),
                        Ok(Item::CaughtUp) => None,
                        Err(e) => Some(Err(e)),
                    })
                })))
            }
        }
    }
}
