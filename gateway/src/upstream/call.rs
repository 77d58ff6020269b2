//! One RPC of an endpoint: the allowlisted request headers as metadata, and
//! one deadline. Each attempt sends what is left of it as `grpc-timeout`
//! (which the channel and the service both enforce) and is bounded by it
//! here too, so whatever ends once it has passed (our timer, the channel's
//! or a service's Cancelled for a spent `grpc-timeout`) is DeadlineExceeded.
//! Reads are retried as `suite_grpc::retry` says, within the deadline. A
//! server-streaming call is bounded by it only until it has started.

use crate::{
    contract::{endpoints::Endpoint, routes::Route},
    http::problem::Problem,
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header, uri::PathAndQuery};
use std::{net::IpAddr, time::Instant};
use suite_grpc::{
    balance::Balanced,
    retry::{self, Retry},
};
use suite_proto::codec::BytesCodec;
use suite_telemetry::grpc_client::TracedChannel;
use tonic::{
    Code, Status,
    client::Grpc,
    metadata::{MetadataMap, MetadataValue},
};

/// Request headers passed on to the services as gRPC metadata.
/// (Not `x-request-id`: the one the gateway accepted or minted is set
/// below, whatever the client sent.)
const FORWARDED_HEADERS: &[&str] = &[
    "authorization",
    "traceparent",
    "tracestate",
    "baggage",
    "accept-language",
];

/// Response metadata passed back to clients as headers (from successes and
/// errors alike); everything else a service sends stays inside.
const RETURNED_METADATA: &[&str] = &[
    "content-language",
    "retry-after",
    // RFC 9745 and RFC 8594: a service announcing a method's retirement.
    "deprecation",
    "sunset",
    "link",
];

/// The metadata of a call: the allowlisted headers, the request id and the
/// client's address.
pub fn metadata(
    headers: &HeaderMap,
    request_id: Option<HeaderValue>,
    client: IpAddr,
) -> MetadataMap {
    let mut md = MetadataMap::new();
    for name in FORWARDED_HEADERS {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok())
            && let Ok(v) = MetadataValue::try_from(v)
        {
            md.insert(*name, v);
        }
    }
    if let Some(Ok(mut v)) = request_id.map(|id| MetadataValue::try_from(id.as_bytes())) {
        // New on every request: kept out of HPACK's table, where it would
        // only push out the headers that repeat.
        v.set_sensitive(true);
        md.insert("x-request-id", v);
    }
    if let Ok(v) = MetadataValue::try_from(client.to_string()) {
        md.insert("x-forwarded-for", v);
    }
    md
}

/// The allowlisted entries of a reply's metadata, as response headers.
pub fn returned_headers(md: &MetadataMap) -> Vec<(header::HeaderName, HeaderValue)> {
    RETURNED_METADATA
        .iter()
        .filter_map(|name| {
            let value = md.get(*name)?.to_str().ok()?;
            Some((
                header::HeaderName::from_static(name),
                HeaderValue::from_str(value).ok()?,
            ))
        })
        .collect()
}

/// The problem for an upstream error status, with its allowlisted metadata
/// as headers (logged: the status says more than the problem shows).
pub fn problem(route: &Route, s: &Status) -> Problem {
    tracing::info!(code = ?s.code(), route = route.template.as_str(), "upstream error: {}", s.message());
    returned_headers(s.metadata())
        .into_iter()
        .fold(Problem::from_status(s), |p, (name, value)| {
            p.with_header(name, value)
        })
}

fn spent() -> Status {
    Status::deadline_exceeded("budget spent")
}

/// How much of a call its deadline bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bounded {
    /// All of it: each attempt sends what is left as `grpc-timeout`, and a
    /// Cancelled once the deadline has passed is that deadline's doing.
    Whole,
    /// Its start only (up to the response headers): no `grpc-timeout`.
    Start,
}

/// What every attempt of a call sends.
struct Sent {
    metadata: MetadataMap,
    message: Bytes,
}

/// One RPC of `endpoint` on `channel`, retried as `retry` says within
/// `deadline`: each attempt a client span of its own, on a ready client,
/// made by `send` (which picks the call's kind) and bounded as `bounded` says.
async fn call<T, F, Fut>(
    endpoint: &Endpoint,
    channel: &Balanced,
    sent: Sent,
    retry: Retry,
    deadline: Instant,
    bounded: Bounded,
    send: F,
) -> Result<T, Status>
where
    F: Fn(Grpc<TracedChannel>, tonic::Request<Bytes>, PathAndQuery) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    retry::call(channel, retry, deadline, |left| {
        let mut request = tonic::Request::from_parts(
            sent.metadata.clone(),
            tonic::Extensions::new(),
            sent.message.clone(),
        );
        if bounded == Bounded::Whole {
            request.set_timeout(left);
        }
        let mut client = Grpc::new(endpoint.trace.wrap(channel.channel()));
        let path = endpoint.grpc_path.clone();
        let send = &send;
        async move {
            let attempt = async {
                client
                    .ready()
                    .await
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                send(client, request, path).await
            };
            match tokio::time::timeout_at(deadline.into(), attempt).await {
                Err(_) => Err(spent()),
                Ok(Err(s))
                    if bounded == Bounded::Whole
                        && s.code() == Code::Cancelled
                        && Instant::now() >= deadline =>
                {
                    Err(spent())
                }
                Ok(reply) => reply,
            }
        }
    })
    .await
}

/// The endpoint's RPC with `message`, before `deadline`.
pub async fn unary(
    endpoint: &Endpoint,
    metadata: MetadataMap,
    message: Bytes,
    retry: Retry,
    deadline: Instant,
) -> Result<tonic::Response<Bytes>, Status> {
    let send = |mut client: Grpc<TracedChannel>, request, path| async move {
        client.unary(request, path, BytesCodec).await
    };
    call(
        endpoint,
        &endpoint.upstream,
        Sent { metadata, message },
        retry,
        deadline,
        Bounded::Whole,
        send,
    )
    .await
}

/// The endpoint's server-streaming RPC with `message`, on `channel` (one of
/// the endpoint's stream lanes): only its start (up to the response
/// headers, which carry an early error) must come before `deadline`. No
/// `grpc-timeout` is sent: the stream lasts until the service, the client
/// or the token's end ends it.
pub async fn server_streaming(
    endpoint: &Endpoint,
    channel: &Balanced,
    metadata: MetadataMap,
    message: Bytes,
    retry: Retry,
    deadline: Instant,
) -> Result<tonic::Response<tonic::Streaming<Bytes>>, Status> {
    let send = |mut client: Grpc<TracedChannel>, request, path| async move {
        client.server_streaming(request, path, BytesCodec).await
    };
    call(
        endpoint,
        channel,
        Sent { metadata, message },
        retry,
        deadline,
        Bounded::Start,
        send,
    )
    .await
}
