//! One RPC of an endpoint: the allowlisted request headers as metadata, and
//! one deadline. Each attempt sends what is left of it as `grpc-timeout`
//! (which the channel and the service both enforce) and is bounded by it
//! here too, so whatever ends once it has passed (our timer, the channel's
//! or a service's Cancelled for a spent `grpc-timeout`) is DeadlineExceeded.
//! Reads are retried as `suite_grpc::retry` says, within the deadline. A
//! server-streaming call is bounded by it only until it has started.

use crate::endpoints::Endpoint;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use std::{net::IpAddr, time::Instant};
use suite_grpc::{
    balance::Balanced,
    retry::{self, Retry},
};
use suite_proto::codec::BytesCodec;
use tonic::{
    Code, Status,
    metadata::{MetadataMap, MetadataValue},
};

/// Request headers passed on to the services as gRPC metadata.
const FORWARDED_HEADERS: &[&str] = &[
    "authorization",
    "x-request-id",
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
pub fn problem(route: &crate::routes::Route, s: &Status) -> crate::problem::Problem {
    tracing::info!(code = ?s.code(), route = route.template.as_str(), "upstream error: {}", s.message());
    returned_headers(s.metadata()).into_iter().fold(
        crate::problem::Problem::from_status(s),
        |p, (name, value)| p.with_header(name, value),
    )
}

fn spent() -> Status {
    Status::deadline_exceeded("budget spent")
}

/// The endpoint's RPC with `message`, before `deadline`.
pub async fn unary(
    endpoint: &Endpoint,
    metadata: MetadataMap,
    message: Bytes,
    retry: Retry,
    deadline: Instant,
) -> Result<tonic::Response<Bytes>, Status> {
    retry::call(&endpoint.upstream, retry, deadline, |left| {
        let mut request =
            tonic::Request::from_parts(metadata.clone(), tonic::Extensions::new(), message.clone());
        request.set_timeout(left);
        // Each attempt is a client span of its own.
        let mut client = tonic::client::Grpc::new(endpoint.trace.wrap(endpoint.upstream.channel()));
        let path = endpoint.grpc_path.clone();
        async move {
            let attempt = async {
                client
                    .ready()
                    .await
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                client.unary(request, path, BytesCodec).await
            };
            match tokio::time::timeout_at(deadline.into(), attempt).await {
                Err(_) => Err(spent()),
                Ok(Err(s)) if s.code() == Code::Cancelled && Instant::now() >= deadline => {
                    Err(spent())
                }
                Ok(reply) => reply,
            }
        }
    })
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
    retry::call(channel, retry, deadline, |_left| {
        let request =
            tonic::Request::from_parts(metadata.clone(), tonic::Extensions::new(), message.clone());
        // A client span of its own, open until the stream's trailers (or its drop).
        let mut client = tonic::client::Grpc::new(endpoint.trace.wrap(channel.channel()));
        let path = endpoint.grpc_path.clone();
        async move {
            let attempt = async {
                client
                    .ready()
                    .await
                    .map_err(|e| Status::unavailable(e.to_string()))?;
                client.server_streaming(request, path, BytesCodec).await
            };
            tokio::time::timeout_at(deadline.into(), attempt)
                .await
                .unwrap_or_else(|_| Err(spent()))
        }
    })
    .await
}
