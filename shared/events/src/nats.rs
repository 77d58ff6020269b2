//! The bus on NATS JetStream: one stream per service (created or updated by
//! the service that publishes to it), ordered consumers to read from a point
//! in the past, durable consumers for effects that must each happen once.

use crate::{
    Error, PublishFailure, StreamSettings,
    event::{Event, Stream},
    subscription::{Filter, Item, Raw, Start},
};
use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
    message::PublishMessage,
    stream::{Config, DiscardPolicy, RetentionPolicy, StorageType},
};
use futures_util::{StreamExt, stream};
use std::{fmt, pin::Pin, time::Duration};

/// How long a durable consumer's delivery waits for its ack before it is
/// delivered again.
const ACK_WAIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct NatsBus {
    js: jetstream::Context,
    settings: StreamSettings,
    /// Counts the connection's losses. JetStream's ephemeral consumers do
    /// not outlive a server restart and the client does not always notice,
    /// so every subscription ends at a loss, and its owner subscribes again
    /// from where it was.
    losses: tokio::sync::watch::Receiver<u64>,
}

impl fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsBus").finish_non_exhaustive()
    }
}

impl NatsBus {
    /// A client of the NATS at `url`, connecting in the background (and
    /// reconnecting whenever it drops): a NATS that is down delays events,
    /// never the start of a service.
    pub async fn connect(
        url: &str,
        client_name: &str,
        settings: StreamSettings,
    ) -> Result<Self, Error> {
        let (lost, losses) = tokio::sync::watch::channel(0u64);
        let client = async_nats::ConnectOptions::new()
            .name(client_name)
            .event_callback(move |event| {
                let lost = lost.clone();
                async move {
                    match event {
                        async_nats::Event::Disconnected => {
                            tracing::warn!("NATS connection lost; reconnecting");
                            lost.send_modify(|n| *n += 1);
                        }
                        async_nats::Event::Connected => tracing::info!("NATS connected"),
                        other => tracing::debug!(event = %other, "NATS"),
                    }
                }
            })
            .connection_timeout(settings.connect_timeout)
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| Error::Bus(format!("NATS_URL {url}: {e}")))?;
        let mut js = jetstream::new(client);
        js.set_timeout(settings.publish_timeout);
        Ok(Self {
            js,
            settings,
            losses,
        })
    }

    /// The configuration of `stream`'s JetStream stream (README documents it).
    fn config(&self, stream: Stream) -> Config {
        Config {
            name: stream.name().to_owned(),
            subjects: vec![format!("{}.>", stream.package())],
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_age: self.settings.max_age,
            max_bytes: self.settings.max_bytes,
            max_message_size: 1 << 20,
            duplicate_window: self.settings.duplicate_window,
            num_replicas: self.settings.replicas,
            description: Some(format!("Events of {}", stream.source())),
            ..Config::default()
        }
    }

    /// Creates `stream`'s JetStream stream, or updates it to the configured
    /// limits: its publisher's job, at start-up.
    pub async fn prepare(&self, stream: Stream) -> Result<(), Error> {
        self.js
            .create_or_update_stream(self.config(stream))
            .await
            .map(drop)
            .map_err(|e| Error::Bus(format!("stream {}: {e}", stream.name())))
    }

    /// Publishes `events` in order, each with its id as `Nats-Msg-Id`, and
    /// waits for JetStream to store them: pipelined, so a batch costs about
    /// one round trip.
    pub async fn publish(&self, events: &[Event]) -> Result<(), PublishFailure> {
        let mut acks = Vec::with_capacity(events.len());
        let mut failed = None;
        let mut stored_before_failure = events.len();
        for (i, event) in events.iter().enumerate() {
            let message = PublishMessage::build()
                .payload(event.data.clone())
                .headers(event.headers());
            match self.js.send_publish(event.nats_subject(), message).await {
                Ok(ack) => acks.push(ack),
                Err(e) => {
                    failed = Some(e.to_string());
                    stored_before_failure = i;
                    break;
                }
            }
        }
        for (stored, ack) in acks.into_iter().enumerate() {
            if let Err(e) = ack.await {
                return Err(PublishFailure {
                    stored,
                    error: e.to_string(),
                });
            }
        }
        match failed {
            None => Ok(()),
            // Those before the refused one were stored (their acks came).
            Some(error) => Err(PublishFailure {
                stored: events.len().min(stored_before_failure),
                error,
            }),
        }
    }

    async fn stream(&self, stream: Stream) -> Result<jetstream::stream::Stream, Error> {
        // Readers create a stream that is not there yet with the defaults
        // (its publisher updates it to its own limits), and never change one.
        self.js
            .get_or_create_stream(self.config(stream))
            .await
            .map_err(|e| Error::Bus(format!("stream {}: {e}", stream.name())))
    }

    /// An ordered (ephemeral) consumer on each stream `filter` reads, from
    /// `start`, merged into one subscription.
    pub async fn subscribe(&self, filter: Filter, start: &Start) -> Result<Raw, Error> {
        let deliver_policy = match start.since() {
            None => DeliverPolicy::New,
            Some(start_time) => DeliverPolicy::ByStartTime { start_time },
        };
        let streams = filter.streams();
        let mut parts = Vec::with_capacity(streams.len());
        for s in &streams {
            let consumer = self
                .stream(*s)
                .await?
                .create_consumer(pull::OrderedConfig {
                    filter_subject: filter.nats_subject(*s),
                    deliver_policy,
                    ..Default::default()
                })
                .await
                .map_err(|e| Error::Bus(format!("consumer on {}: {e}", s.name())))?;
            let caught_up_at_once = consumer.cached_info().num_pending == 0;
            let messages = consumer
                .messages()
                .await
                .map_err(|e| Error::Bus(format!("consumer on {}: {e}", s.name())))?;
            let filter = filter.clone();
            let part = messages.filter_map(move |m| {
                let filter = filter.clone();
                async move {
                    let m = match m {
                        Ok(m) => m,
                        Err(e) => return Some(vec![Err(Error::Bus(e.to_string()))]),
                    };
                    let info = m.info().ok()?;
                    let (pending, published) = (info.pending, info.published);
                    let mut out = Vec::with_capacity(2);
                    match Event::from_nats(m.headers.as_ref(), m.payload.clone()) {
                        Ok(event) if filter.matches(&event) => {
                            out.push(Ok(Part::Event(Item::Event { event, published })));
                        }
                        Ok(_) => {}
                        Err(why) => {
                            tracing::debug!(subject = %m.subject, why, "not an event of ours")
                        }
                    }
                    if pending == 0 {
                        out.push(Ok(Part::CaughtUp));
                    }
                    Some(out)
                }
            });
            let part = part.flat_map(stream::iter);
            let head: Vec<Result<Part, Error>> = if caught_up_at_once {
                vec![Ok(Part::CaughtUp)]
            } else {
                Vec::new()
            };
            parts.push(stream::iter(head).chain(part).boxed());
        }
        Ok(Box::pin(until_lost(
            merge_caught_up(parts, streams.len()),
            self.losses.clone(),
        )))
    }

    /// A durable consumer named `name` on `stream` (its events that `filter`
    /// selects, from the stream's start the first time and from its last
    /// acknowledged event after): each delivery must be acknowledged once
    /// its effect is done, or it comes again.
    pub async fn durable(
        &self,
        name: &str,
        stream: Stream,
        filter: Filter,
    ) -> Result<Deliveries, Error> {
        let consumer = self
            .stream(stream)
            .await?
            .get_or_create_consumer(
                name,
                pull::Config {
                    durable_name: Some(name.to_owned()),
                    filter_subject: filter.nats_subject(stream),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: ACK_WAIT,
                    deliver_policy: DeliverPolicy::All,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| Error::Bus(format!("durable consumer {name}: {e}")))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| Error::Bus(format!("durable consumer {name}: {e}")))?;
        Ok(Box::pin(until_lost(
            messages.map(|m| {
                let m = m.map_err(|e| Error::Bus(e.to_string()))?;
                let event = Event::from_nats(m.headers.as_ref(), m.payload.clone()).ok();
                Ok(Delivery {
                    event,
                    message: Some(m),
                })
            }),
            self.losses.clone(),
        )))
    }
}

/// `items`, ended by an error at the next loss of the connection.
fn until_lost<T: Send + 'static>(
    items: impl futures_util::Stream<Item = Result<T, Error>> + Send + 'static,
    mut losses: tokio::sync::watch::Receiver<u64>,
) -> impl futures_util::Stream<Item = Result<T, Error>> + Send {
    losses.mark_unchanged();
    let lost = async move {
        let _ = losses.changed().await;
        Err(Error::Bus("the NATS connection was lost".into()))
    };
    // The loss ends the stream: after its error, nothing more.
    let lost = stream::once(lost);
    let mut ended = false;
    stream::select(items.map(Some), lost.map(Some).chain(stream::iter([None])))
        .take_while(move |item| {
            let go = !ended;
            if item.as_ref().is_none_or(Result::is_err) {
                ended = true;
            }
            std::future::ready(go && item.is_some())
        })
        .filter_map(std::future::ready)
}

/// One stream's part of a merged subscription, as it comes.
type PartStream = Pin<Box<dyn futures_util::Stream<Item = Result<Part, Error>> + Send>>;

/// One stream's part of a merged subscription.
enum Part {
    Event(Item),
    CaughtUp,
}

/// The parts merged as they come, with one [`Item::CaughtUp`] once every
/// part has caught up.
fn merge_caught_up(
    parts: Vec<PartStream>,
    count: usize,
) -> impl futures_util::Stream<Item = Result<Item, Error>> + Send {
    let mut caught_up = 0usize;
    stream::select_all(parts).filter_map(move |p| {
        let out = match p {
            Ok(Part::Event(item)) => Some(Ok(item)),
            Ok(Part::CaughtUp) => {
                caught_up += 1;
                (caught_up == count).then_some(Ok(Item::CaughtUp))
            }
            Err(e) => Some(Err(e)),
        };
        std::future::ready(out)
    })
}

/// A durable consumer's deliveries.
pub type Deliveries = Pin<Box<dyn futures_util::Stream<Item = Result<Delivery, Error>> + Send>>;

/// One delivery of a durable consumer.
pub struct Delivery {
    /// The event; `None` if the message was not one of ours (acknowledge it
    /// all the same).
    pub event: Option<Event>,
    message: Option<jetstream::Message>,
}

impl Delivery {
    /// A delivery of the in-process bus, which needs no acknowledgement.
    pub(crate) fn local(event: Event) -> Self {
        Self {
            event: Some(event),
            message: None,
        }
    }

    /// Acknowledges it: its effect is done, it will not come again.
    pub async fn ack(self) -> Result<(), Error> {
        match self.message {
            Some(m) => m.ack().await.map_err(|e| Error::Bus(e.to_string())),
            None => Ok(()),
        }
    }
}
