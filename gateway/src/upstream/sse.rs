//! Server-streaming RPCs as Server-Sent Events (`text/event-stream`), for
//! any route whose method streams its replies.
//!
//! The convention, from the fields of what is sent (the streamed message,
//! or its `response_body` field's message when the rule names one): each
//! message is one event with `id:` its `id` string field (when non-empty:
//! what a client sends back as `Last-Event-ID` to resume), `event:` its
//! `type` string field (when non-empty), and `data:` it in proto3 JSON on
//! one line, as a unary reply would be. On
//! connecting, a `Last-Event-ID` header fills the request's `last_event_id`
//! string field, over the query's `lastEventId`.
//!
//! An error before the first message is an ordinary problem answer. After
//! it, the stream ends with one `event: error` whose data is the problem's
//! JSON (and no `id`, so that a reconnect resumes after the last real
//! event): an upstream error status, a message that does not decode (502),
//! or the access token's end (401 at its `exp`, or as soon as the gateway
//! learns of its revocation: a logout, a password or roles change, a
//! deletion; whether or not the service has ended the stream itself).
//!
//! Streams are limited in all (`MAX_EVENT_STREAMS`, 503 above), per user
//! and per client address (429 above), and ride on connections of their
//! own to the service (`lanes`), never on the one the other calls take.
//! Silence is broken by a
//! `: keep-alive` comment (`EVENT_STREAM_KEEP_ALIVE_MS`). A client that goes
//! drops the stream, and with it the upstream call; a gateway that stops
//! ends its streams plainly, for the clients to resume elsewhere.
//!
//! A `HEAD` gets the `GET`'s status and headers and no stream: the call is
//! made, so that the service's refusals (403, 404, …) show as they would,
//! and dropped (cancelling it upstream) as soon as its head has arrived.

use crate::{
    contract::{
        endpoints::Endpoint,
        routes::{ResponseBody, Route},
        transcode,
    },
    http::problem::{Origin, Problem},
    policy::authenticate,
    state::SharedState,
    upstream::call,
};
use axum::response::{
    IntoResponse, Response,
    sse::{Event, KeepAlive, Sse},
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use prost_reflect::{DynamicMessage, FieldDescriptor, Value};
use std::{
    convert::Infallible,
    net::IpAddr,
    pin::Pin,
    sync::Arc,
    time::{Duration, Instant},
};
use suite_events::slots::{Full, Slot, Slots};
use suite_grpc::retry::Retry;
use suite_tokens::{Lasting, TokenError};
use tokio::sync::watch;
use tonic::metadata::MetadataMap;
use uuid::Uuid;

/// Seconds a client turned away at a stream limit is asked to wait.
const FULL_RETRY_AFTER: HeaderValue = HeaderValue::from_static("5");

/// How many event streams may be open: in all (`MAX_EVENT_STREAMS`), per
/// user and per client address. The shares keep one user (or one address
/// with many users' tokens) from taking every stream.
#[derive(Debug)]
pub struct StreamLimits {
    /// In all and per user (a public route's streams count in all only).
    by_user: Arc<Slots<Uuid>>,
    by_address: Arc<Slots<IpAddr>>,
}

/// A stream's places in the limits, given back when it ends.
struct Admitted {
    _user: Slot<Uuid>,
    _address: Slot<IpAddr>,
}

impl StreamLimits {
    pub fn new(config: &crate::Config) -> Self {
        Self {
            by_user: Slots::new(
                config.max_event_streams as usize,
                config.max_event_streams_per_user as usize,
            ),
            // The total is the other's.
            by_address: Slots::new(usize::MAX, config.max_event_streams_per_address as usize),
        }
    }

    fn admit(&self, user: Option<Uuid>, address: IpAddr) -> Result<Admitted, Problem> {
        let refused = |full: Full, whose: &str| {
            let problem = match full {
                Full::Total => Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many event streams are open; try again shortly",
                ),
                Full::Key(n) => Problem::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "at most {n} event streams may be open at once {whose}; close one first"
                    ),
                ),
            };
            problem.with_header(header::RETRY_AFTER, FULL_RETRY_AFTER)
        };
        let address_slot = self
            .by_address
            .take(Some(address))
            .map_err(|f| refused(f, "from one address"))?;
        let user_slot = self
            .by_user
            .take(user)
            .map_err(|f| refused(f, "for one user"))?;
        Ok(Admitted {
            _user: user_slot,
            _address: address_slot,
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.by_user.open()
    }
}

/// Fills `message`'s `last_event_id` from a `Last-Event-ID` header. Whether
/// the id is a valid one is the service's to say.
pub fn resume(
    route: &Route,
    message: &mut DynamicMessage,
    headers: &HeaderMap,
) -> Result<(), Problem> {
    let (Some(value), Some(field)) = (headers.get("last-event-id"), &route.resume_field) else {
        return Ok(());
    };
    let id = std::str::from_utf8(value.as_bytes())
        .map_err(|_| Problem::bad_field("Last-Event-ID", "must be UTF-8 text"))?;
    message.set_field(field, Value::String(id.to_owned()));
    Ok(())
}

/// Starts the endpoint's stream with `message` and answers with its events.
pub async fn serve(
    gw: &SharedState,
    endpoint: Arc<Endpoint>,
    parts: &Parts,
    metadata: MetadataMap,
    message: Bytes,
    retry: Retry,
) -> Result<Response, Problem> {
    let token = parts.extensions.get::<Lasting>().cloned();
    let Some(crate::policy::rate_limit::Client(address)) = parts.extensions.get().copied() else {
        return Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no client address",
        ));
    };
    // Held for as long as the stream is open (dropped with it).
    let admitted = gw
        .event_streams
        .admit(token.as_ref().and_then(|t| t.caller.user_id()), address)?;
    let lane = endpoint.streams.take().map_err(|e| {
        tracing::error!(error = %e, "cannot open a connection for event streams");
        Problem::new(StatusCode::BAD_GATEWAY, "the service cannot be reached")
    })?;
    // The token's end: its `exp`, or its revocation.
    let ends = token.map(|t| -> Pin<Box<dyn Future<Output = TokenError> + Send>> {
        Box::pin(async move { t.ended().await })
    });
    // The budget bounds the start only: the stream itself lasts.
    let reply = call::server_streaming(
        &endpoint,
        &lane.channel,
        metadata,
        message,
        retry,
        Instant::now() + gw.budget,
    )
    .await
    .map_err(|s| call::problem(&endpoint.route, &s))?;
    let returned = call::returned_headers(reply.metadata());
    if parts.extensions.get::<crate::http::head::Head>().is_some() {
        // The GET's status and headers, which the service's answer decided;
        // no events: the call (and its upstream stream) and the stream slot
        // end here.
        drop((reply, admitted, lane));
        return Ok(events_response(
            futures_util::stream::empty(),
            gw.keep_alive,
            returned,
        ));
    }
    let feed = Feed {
        upstream: reply.into_inner(),
        endpoint,
        ends,
        origin: Origin::current(),
        closing: gw.closing.subscribe(),
        ended: false,
        _held: (admitted, lane),
    };
    let events = futures_util::stream::unfold(feed, Feed::next_event);
    Ok(events_response(events, gw.keep_alive, returned))
}

/// The answer that streams `events`, with the service's `returned` headers.
fn events_response<S>(
    events: S,
    keep_alive: Duration,
    returned: Vec<(header::HeaderName, HeaderValue)>,
) -> Response
where
    S: futures_util::Stream<Item = Result<Event, Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(keep_alive).text("keep-alive"))
        .into_response();
    let headers = response.headers_mut();
    headers.extend(returned);
    // Events are personal data, like every answer: never cached.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Proxies such as nginx would otherwise hold events back in a buffer.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// An open stream: the upstream call and what ends it.
struct Feed {
    upstream: tonic::Streaming<Bytes>,
    endpoint: Arc<Endpoint>,
    /// The token's end, with why (none on a public route).
    ends: Option<Pin<Box<dyn Future<Output = TokenError> + Send>>>,
    /// For the problem of an `event: error`.
    origin: Origin,
    /// The server is stopping (see `AppState::closing`).
    closing: watch::Receiver<bool>,
    /// The `event: error` was sent: nothing follows.
    ended: bool,
    /// The stream's places in the limits and on its lane.
    _held: (Admitted, crate::upstream::lanes::Ticket),
}

impl Feed {
    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if self.ended {
            return None;
        }
        let event = tokio::select! {
            // First: a busy stream must not outlive its token.
            biased;
            why = token_ended(&mut self.ends) => {
                self.end(&authenticate::refused(&why))
            }
            // A plain end: the client reconnects, with `Last-Event-ID`.
            () = stopping(&mut self.closing) => return None,
            next = self.upstream.message() => match next {
                Ok(Some(bytes)) => match frame(&self.endpoint.route, &bytes) {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::error!(error = %e, "undecodable upstream message");
                        self.end(&Problem::new(StatusCode::BAD_GATEWAY, "bad reply from a service"))
                    }
                },
                Ok(None) => return None,
                Err(s) => {
                    let problem = call::problem(&self.endpoint.route, &s);
                    self.end(&problem)
                }
            },
        };
        Some((Ok(event), self))
    }

    /// The last event: the problem that ends the stream.
    fn end(&mut self, problem: &Problem) -> Event {
        self.ended = true;
        Event::default()
            .event("error")
            .data(problem.body(&self.origin).to_string())
    }
}

/// Completes at the token's end; never without a token.
async fn token_ended(
    ends: &mut Option<Pin<Box<dyn Future<Output = TokenError> + Send>>>,
) -> TokenError {
    match ends {
        Some(ends) => ends.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Completes once the server is stopping.
async fn stopping(closing: &mut watch::Receiver<bool>) {
    let gone = closing.wait_for(|closing| *closing).await.is_err();
    if gone {
        // No server left to stop (the state is being dropped).
        std::future::pending::<()>().await;
    }
}

/// One streamed message as an event (see the module header).
fn frame(route: &Route, bytes: &[u8]) -> Result<Event, String> {
    let (whole, json) = transcode::reply(route, bytes)?;
    // The fields of what is sent: the `response_body` field's message, if
    // the rule names one.
    let sent = match &route.response_body {
        ResponseBody::Whole => None,
        ResponseBody::Field(field) => match whole.get_field(field).as_ref() {
            Value::Message(m) => Some(m.clone()),
            _ => None,
        },
    };
    let message = sent.as_ref().unwrap_or(&whole);
    let fields = &route.event_fields;
    let mut event = Event::default();
    if let Some(id) = fields.id.as_ref().and_then(|f| line_text(message, f)) {
        event = event.id(id);
    }
    if let Some(kind) = fields.kind.as_ref().and_then(|f| line_text(message, f)) {
        event = event.event(kind);
    }
    Ok(event.data(json.to_string()))
}

/// A non-empty string field that fits on an SSE line (no line breaks, no
/// NUL, which the framing cannot carry).
fn line_text(message: &DynamicMessage, field: &FieldDescriptor) -> Option<String> {
    match message.get_field(field).as_ref() {
        Value::String(s) if !s.is_empty() && !s.contains(['\r', '\n', '\0']) => Some(s.clone()),
        _ => None,
    }
}
