//! What a subscriber asks for (which events, from where) and what it gets:
//! the past it asked for, a mark when it has caught up, then live events.

use crate::{
    Error,
    event::{Event, Stream},
};
use chrono::{DateTime, Utc};
use futures_util::Stream as FuturesStream;
use std::{pin::Pin, time::Duration};
use tokio_stream::StreamExt;
use uuid::Uuid;

/// How far before a resumed-after event's own time the stream is read
/// again: its publication may lag its making (a relay catching up), and
/// clocks differ a little between hosts.
const RESUME_MARGIN: Duration = Duration::from_secs(5);

/// Where a subscription starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// With the next event published.
    New,
    /// With the events published at or after this instant.
    Since(DateTime<Utc>),
    /// After the event with this id (an SSE `Last-Event-ID`).
    After(Uuid),
}

impl Start {
    /// The publication instant to read from; `None` for only new events.
    pub(crate) fn since(&self) -> Option<DateTime<Utc>> {
        match self {
            Self::New => None,
            Self::Since(at) => Some(*at),
            Self::After(id) => {
                let made = id
                    .get_timestamp()
                    .map(|ts| {
                        let (secs, nanos) = ts.to_unix();
                        DateTime::from_timestamp(i64::try_from(secs).unwrap_or(0), nanos)
                            .unwrap_or_default()
                    })
                    .unwrap_or_default();
                Some(made - chrono::Duration::from_std(RESUME_MARGIN).unwrap_or_default())
            }
        }
    }
}

/// Which events a subscription selects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// The streams read (none: every stream).
    pub streams: Vec<Stream>,
    /// Only events about this user.
    pub subject: Option<String>,
    /// Only events of these types (none: every type).
    pub types: Vec<String>,
}

impl Filter {
    pub fn streams(&self) -> Vec<Stream> {
        if self.streams.is_empty() {
            Stream::ALL.to_vec()
        } else {
            self.streams.clone()
        }
    }

    pub fn matches(&self, event: &Event) -> bool {
        event.stream().is_some_and(|s| self.streams().contains(&s))
            && self.subject.as_ref().is_none_or(|s| *s == event.subject)
            && (self.types.is_empty() || self.types.contains(&event.event_type))
    }

    /// The NATS subject filter on `stream`'s consumer that selects as much
    /// of this as one subject can (the rest is filtered as events arrive).
    pub fn nats_subject(&self, stream: Stream) -> String {
        let event_type = match self.types.as_slice() {
            [only] if Stream::of_type(only) == Some(stream) => only.clone(),
            _ => format!("{}.*", stream.package()),
        };
        match &self.subject {
            Some(subject) => format!("{event_type}.{subject}"),
            None => format!("{event_type}.*"),
        }
    }
}

/// What a subscription yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// An event, and when the bus stored it.
    Event {
        event: Event,
        published: DateTime<Utc>,
    },
    /// Every event published before the subscription began has been
    /// yielded (once, after the past it asked for).
    CaughtUp,
}

/// A bus's raw subscription.
pub type Raw = Pin<Box<dyn FuturesStream<Item = Result<Item, Error>> + Send>>;

/// A subscription: the bus's, with a resumed-after event's predecessors
/// (and itself) dropped.
pub struct Subscription {
    raw: Raw,
    /// Until the resumed-after event is seen: its id, and what came before
    /// the catch-up mark (kept in case it never shows).
    resuming: Option<(Uuid, Vec<Item>)>,
    /// Items ready to be yielded, in order.
    ready: std::collections::VecDeque<Item>,
}

impl Subscription {
    pub(crate) fn new(raw: Raw, start: &Start) -> Self {
        let resuming = match start {
            Start::After(id) => Some((*id, Vec::new())),
            _ => None,
        };
        Self {
            raw,
            resuming,
            ready: Default::default(),
        }
    }

    /// The next item; `None` when the bus ended the subscription.
    pub async fn next(&mut self) -> Option<Result<Item, Error>> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(Ok(item));
            }
            let item = match self.raw.next().await? {
                Ok(item) => item,
                Err(e) => return Some(Err(e)),
            };
            let Some((after, held)) = self.resuming.as_mut() else {
                return Some(Ok(item));
            };
            match item {
                Item::Event { ref event, .. } if event.id == *after => {
                    // Found: what came before it in its own stream was seen
                    // already; of the other stream's (merged beside it, in no
                    // set order with it), what was made after it was not.
                    let (after, stream) = (*after, event.stream());
                    let held = std::mem::take(held);
                    self.resuming = None;
                    self.ready.extend(held.into_iter().filter(|i| {
                        matches!(i, Item::Event { event: e, .. } if e.stream() != stream && e.id > after)
                    }));
                }
                Item::Event { .. } => held.push(item),
                Item::CaughtUp => {
                    // Never found (older than the stream keeps): the later
                    // ones by id are the best guess of what was missed.
                    let after = *after;
                    let held = std::mem::take(held);
                    self.resuming = None;
                    self.ready
                        .extend(held.into_iter().filter(
                            |i| matches!(i, Item::Event { event, .. } if event.id > after),
                        ));
                    self.ready.push_back(Item::CaughtUp);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: Uuid) -> Item {
        Item::Event {
            event: Event {
                id,
                event_type: "suite.user.v1.UserDeleted".into(),
                source: "suite-user".into(),
                subject: "u".into(),
                time: Utc::now(),
                traceparent: None,
                data: Default::default(),
            },
            published: Utc::now(),
        }
    }

    async fn collect(items: Vec<Item>, start: Start) -> Vec<Item> {
        let raw: Raw = Box::pin(tokio_stream::iter(items.into_iter().map(Ok)));
        let mut sub = Subscription::new(raw, &start);
        let mut out = Vec::new();
        while let Some(Ok(item)) = sub.next().await {
            out.push(item);
        }
        out
    }

    /// Each item's event id; `None` for the catch-up mark.
    fn ids_of(items: &[Item]) -> Vec<Option<Uuid>> {
        items
            .iter()
            .map(|i| match i {
                Item::Event { event, .. } => Some(event.id),
                Item::CaughtUp => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn resuming_skips_up_to_and_including_the_last_seen_event() {
        let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
        let items: Vec<Item> = ids
            .iter()
            .map(|i| event(*i))
            .chain([Item::CaughtUp])
            .collect();
        let got = collect(items, Start::After(ids[1])).await;
        assert_eq!(ids_of(&got), vec![Some(ids[2]), Some(ids[3]), None]);
        // Not found before catching up: the later ids only.
        let unseen = Uuid::now_v7();
        let later = Uuid::now_v7();
        let got = collect(
            vec![event(ids[0]), Item::CaughtUp, event(later)],
            Start::After(unseen),
        )
        .await;
        assert_eq!(ids_of(&got), vec![None, Some(later)]);
    }

    #[tokio::test]
    async fn resuming_keeps_the_other_streams_later_events_found_before_the_mark() {
        let seen = Uuid::now_v7();
        let later = Uuid::now_v7();
        let mut other = event(later);
        if let Item::Event { event, .. } = &mut other {
            event.event_type = "suite.auth.v1.SessionEnded".into();
        }
        // The other stream's later event arrives before the mark.
        let got = collect(vec![other, event(seen), Item::CaughtUp], Start::After(seen)).await;
        assert_eq!(ids_of(&got), vec![Some(later), None]);
    }

    #[test]
    fn nats_subjects_narrow_by_type_and_user() {
        let f = Filter {
            streams: vec![Stream::User],
            subject: Some("abc".into()),
            types: vec![],
        };
        assert_eq!(f.nats_subject(Stream::User), "suite.user.v1.*.abc");
        let f = Filter {
            types: vec!["suite.auth.v1.SessionEnded".into()],
            ..Filter::default()
        };
        assert_eq!(f.nats_subject(Stream::Auth), "suite.auth.v1.SessionEnded.*");
        assert_eq!(f.nats_subject(Stream::User), "suite.user.v1.*.*");
    }
}
