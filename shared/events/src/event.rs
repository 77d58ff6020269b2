//! One event: a protobuf message in a CloudEvents 1.0 envelope, and its
//! binary-mode form on NATS (each attribute a `ce-<attribute>` header, the
//! message as the body).

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

/// The CloudEvents version of every envelope.
pub const SPEC_VERSION: &str = "1.0";
/// The body's media type: the event's protobuf message.
pub const CONTENT_TYPE: &str = "application/protobuf";

/// A service's stream of events: the stream it publishes to, named for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    User,
    Auth,
}

impl Stream {
    pub const ALL: [Stream; 2] = [Stream::User, Stream::Auth];

    /// The JetStream stream's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "SUITE_USER",
            Self::Auth => "SUITE_AUTH",
        }
    }

    /// The protobuf package of its events, which starts each event's type
    /// and subject.
    pub fn package(self) -> &'static str {
        match self {
            Self::User => "suite.user.v1",
            Self::Auth => "suite.auth.v1",
        }
    }

    /// The CloudEvents source of its events.
    pub fn source(self) -> &'static str {
        match self {
            Self::User => "suite-user",
            Self::Auth => "suite-auth",
        }
    }

    /// The stream an event type (a message's full name) belongs to.
    pub fn of_type(event_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| {
            event_type
                .strip_prefix(s.package())
                .is_some_and(|rest| rest.starts_with('.'))
        })
    }
}

/// An event, as written to the outbox and carried by the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// A UUIDv7: unique, and ordered by when it was made.
    pub id: Uuid,
    /// The full name of the message in `data` (e.g. `suite.user.v1.UserCreated`).
    pub event_type: String,
    /// The service that published it.
    pub source: String,
    /// The user it is about.
    pub subject: String,
    pub time: DateTime<Utc>,
    /// The W3C trace context of the request that caused it.
    pub traceparent: Option<String>,
    /// The message, protobuf-encoded.
    pub data: Bytes,
}

impl Event {
    /// A new event about user `subject` carrying `message`, in the current
    /// trace.
    pub fn new<M: prost::Name>(message: &M, subject: Uuid) -> Self {
        let event_type = M::full_name();
        let source = Stream::of_type(&event_type)
            .map(Stream::source)
            .unwrap_or("suite");
        Self {
            id: Uuid::now_v7(),
            source: source.to_owned(),
            event_type,
            subject: subject.to_string(),
            time: Utc::now(),
            traceparent: suite_telemetry::current_traceparent(),
            data: Bytes::from(message.encode_to_vec()),
        }
    }

    /// The stream it belongs to, by its type.
    pub fn stream(&self) -> Option<Stream> {
        Stream::of_type(&self.event_type)
    }

    /// Its NATS subject: `<type>.<subject>`, so that a consumer can filter
    /// by type, by user (`suite.user.v1.*.<id>`) or both.
    pub fn nats_subject(&self) -> String {
        format!("{}.{}", self.event_type, self.subject)
    }

    /// Decodes `data` as `M`, if it is an `M`.
    pub fn decode<M: prost::Name + Default>(&self) -> Option<M> {
        if self.event_type != M::full_name() {
            return None;
        }
        M::decode(self.data.clone()).ok()
    }

    /// The CloudEvents attributes as NATS headers (binary content mode),
    /// and the message id that lets JetStream drop a re-send.
    pub fn headers(&self) -> async_nats::HeaderMap {
        let mut h = async_nats::HeaderMap::new();
        let id = self.id.to_string();
        h.insert("ce-specversion", SPEC_VERSION);
        h.insert("ce-id", id.as_str());
        h.insert("ce-source", self.source.as_str());
        h.insert("ce-type", self.event_type.as_str());
        h.insert("ce-subject", self.subject.as_str());
        h.insert(
            "ce-time",
            self.time
                .to_rfc3339_opts(SecondsFormat::Micros, true)
                .as_str(),
        );
        h.insert("content-type", CONTENT_TYPE);
        if let Some(tp) = &self.traceparent {
            // The CloudEvents distributed-tracing attribute, and the header
            // that OpenTelemetry's NATS instrumentations read.
            h.insert("ce-traceparent", tp.as_str());
            h.insert("traceparent", tp.as_str());
        }
        h.insert("Nats-Msg-Id", id.as_str());
        h
    }

    /// An event from a NATS message's headers and body; `None` (with the
    /// reason) if the headers are not a CloudEvent of ours.
    pub fn from_nats(
        headers: Option<&async_nats::HeaderMap>,
        body: Bytes,
    ) -> Result<Self, &'static str> {
        let h = headers.ok_or("no headers")?;
        let get = |name: &str| h.get(name).map(|v| v.as_str().to_owned());
        if get("ce-specversion").as_deref() != Some(SPEC_VERSION) {
            return Err("not a CloudEvents 1.0 event");
        }
        let id = get("ce-id")
            .and_then(|v| Uuid::parse_str(&v).ok())
            .ok_or("ce-id is not a UUID")?;
        let time = get("ce-time")
            .and_then(|v| DateTime::parse_from_rfc3339(&v).ok())
            .ok_or("ce-time is not an RFC 3339 time")?
            .with_timezone(&Utc);
        Ok(Self {
            id,
            event_type: get("ce-type").ok_or("no ce-type")?,
            source: get("ce-source").ok_or("no ce-source")?,
            subject: get("ce-subject").ok_or("no ce-subject")?,
            time,
            traceparent: get("ce-traceparent"),
            data: body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use suite_proto::user::UserDeleted;

    #[test]
    fn an_event_survives_its_nats_form() {
        let user = Uuid::now_v7();
        let mut event = Event::new(
            &UserDeleted {
                user_id: user.to_string(),
            },
            user,
        );
        event.traceparent = Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        assert_eq!(event.event_type, "suite.user.v1.UserDeleted");
        assert_eq!(event.source, "suite-user");
        assert_eq!(event.stream(), Some(Stream::User));
        assert_eq!(
            event.nats_subject(),
            format!("suite.user.v1.UserDeleted.{user}")
        );
        let headers = event.headers();
        assert_eq!(
            headers.get("Nats-Msg-Id").map(|v| v.as_str()),
            Some(event.id.to_string().as_str())
        );
        let back = Event::from_nats(Some(&headers), event.data.clone()).expect("ours");
        // Microseconds survive; what the clock had beyond them need not.
        assert_eq!(back.time.timestamp_micros(), event.time.timestamp_micros());
        assert_eq!(
            Event {
                time: event.time,
                ..back
            },
            event
        );
        let decoded: Option<UserDeleted> = event.decode();
        assert_eq!(decoded.map(|d| d.user_id), Some(user.to_string()));
        assert!(Event::from_nats(None, Bytes::new()).is_err());
    }

    #[test]
    fn types_belong_to_their_package_only() {
        assert_eq!(
            Stream::of_type("suite.auth.v1.SessionEnded"),
            Some(Stream::Auth)
        );
        assert_eq!(Stream::of_type("suite.auth.v10.X"), None);
        assert_eq!(Stream::of_type("other.Thing"), None);
    }
}
