//! The in-process bus, for the one-process suite without NATS: the same
//! streams, a recent past to start from, and delivery to every subscriber,
//! held in memory, and on disk too when given a journal (`journal`), so
//! that a restart remembers the recent past (the revocations above all).

use crate::{
    Error,
    event::Event,
    journal::Journal,
    subscription::{Filter, Item, Raw, Start},
};
use chrono::{DateTime, Utc};
use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::sync::broadcast;
use tokio_stream::{StreamExt, wrappers::BroadcastStream};

/// How many events a slow subscriber may fall behind before it is cut off
/// (it then starts again from where it was).
const LAG: usize = 16_384;

/// A bus inside the process. Clones share it.
#[derive(Debug, Clone)]
pub struct LocalBus {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Published events with when they were published, oldest first.
    history: Mutex<VecDeque<Published>>,
    live: broadcast::Sender<Published>,
    /// How long the history keeps an event, and at most how many.
    keep_for: Duration,
    keep_at_most: usize,
    /// The history on disk, if kept there.
    journal: Option<Mutex<Journal>>,
}

#[derive(Debug, Clone)]
struct Published {
    event: Arc<Event>,
    at: DateTime<Utc>,
}

impl Default for LocalBus {
    fn default() -> Self {
        // An hour, as JetStream's default stream keeps far longer: at least
        // an access token's lifetime, which the verifiers read back at start.
        Self::new(Duration::from_secs(3600), 100_000)
    }
}

impl LocalBus {
    pub fn new(keep_for: Duration, keep_at_most: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                history: Mutex::default(),
                live: broadcast::channel(LAG).0,
                keep_for,
                keep_at_most,
                journal: None,
            }),
        }
    }

    /// A bus whose history is also kept in the journal at `path`, and
    /// starts with what it holds (the default limits).
    pub fn persistent(path: &std::path::Path) -> Result<Self, Error> {
        let defaults = Self::default();
        let (keep_for, keep_at_most) = (defaults.inner.keep_for, defaults.inner.keep_at_most);
        let since = Utc::now() - chrono::Duration::from_std(keep_for).unwrap_or_default();
        let (journal, past) = Journal::open(path, since, keep_at_most)?;
        let resumed = past.len();
        let history = past
            .into_iter()
            .map(|(event, at)| Published {
                event: Arc::new(event),
                at,
            })
            .collect();
        tracing::info!(
            path = %path.display(),
            events = resumed,
            "the in-process bus resumes from its journal"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                history: Mutex::new(history),
                live: broadcast::channel(LAG).0,
                keep_for,
                keep_at_most,
                journal: Some(Mutex::new(journal)),
            }),
        })
    }

    /// Publishes `events` in order: each is in the history before the next,
    /// and in the journal (synced) before this returns, if there is one.
    pub async fn publish(&self, events: &[Event]) -> Result<(), Error> {
        let at = Utc::now();
        if self.inner.journal.is_some() {
            let bus = self.clone();
            let written = events.to_vec();
            tokio::task::spawn_blocking(move || bus.journal(&written, at))
                .await
                .map_err(|e| Error::Bus(format!("events journal: {e}")))??;
        }
        self.take(events, at);
        Ok(())
    }

    /// Appends to the journal (blocking: file writes and a sync), and
    /// rewrites it with the history alone once it has grown past that.
    fn journal(&self, events: &[Event], at: DateTime<Utc>) -> Result<(), Error> {
        let Some(journal) = &self.inner.journal else {
            return Ok(());
        };
        let mut journal = journal
            .lock()
            .map_err(|_| Error::Bus("the events journal is poisoned".into()))?;
        journal.append(events, at)?;
        if journal.wants_rewrite() {
            let kept: Vec<_> = self
                .inner
                .history
                .lock()
                .map_err(|_| Error::Bus("the in-process bus is poisoned".into()))?
                .iter()
                .map(|p| ((*p.event).clone(), p.at))
                .chain(events.iter().map(|e| (e.clone(), at)))
                .collect();
            journal.rewrite(&kept)?;
        }
        Ok(())
    }

    /// Takes `events` into the history and hands them to the subscribers.
    fn take(&self, events: &[Event], at: DateTime<Utc>) {
        let Ok(mut history) = self.inner.history.lock() else {
            return;
        };
        for event in events {
            let published = Published {
                event: Arc::new(event.clone()),
                at,
            };
            history.push_back(published.clone());
            // Nobody listening is fine: the history keeps it.
            let _ = self.inner.live.send(published);
        }
        let keep_after = at - chrono::Duration::from_std(self.inner.keep_for).unwrap_or_default();
        while history
            .front()
            .is_some_and(|p| p.at < keep_after || history.len() > self.inner.keep_at_most)
        {
            history.pop_front();
        }
    }

    /// The events `filter` selects, from `start`: the history's first, then
    /// a [`Item::CaughtUp`], then each as it is published.
    pub fn subscribe(&self, filter: Filter, start: &Start) -> Result<Raw, Error> {
        let since = start.since();
        let history = self
            .inner
            .history
            .lock()
            .map_err(|_| Error::Bus("the in-process bus is poisoned".into()))?;
        // Subscribed while the history is locked: nothing falls in between.
        let live = BroadcastStream::new(self.inner.live.subscribe());
        let past: Vec<Item> = match since {
            None => Vec::new(),
            Some(since) => history
                .iter()
                .filter(|p| p.at >= since && filter.matches(&p.event))
                .map(|p| Item::Event {
                    event: (*p.event).clone(),
                    published: p.at,
                })
                .collect(),
        };
        drop(history);
        let live = live.map_while(move |r| match r {
            Ok(p) => Some(Ok(p)),
            Err(_) => None,
        });
        let live = live.filter_map(move |r: Result<Published, Error>| match r {
            Ok(p) if filter.matches(&p.event) => Some(Ok(Item::Event {
                event: (*p.event).clone(),
                published: p.at,
            })),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        });
        // A subscriber that lagged behind has its stream end: it starts over
        // from the last event it saw, like a NATS consumer that was cut off.
        let past = tokio_stream::iter(past.into_iter().map(Ok))
            .chain(tokio_stream::once(Ok(Item::CaughtUp)));
        Ok(Box::pin(past.chain(live)))
    }
}
