//! The client side of every outgoing gRPC call: a tower layer around a
//! channel that opens a client span (OpenTelemetry RPC conventions), injects
//! its trace context into the call's metadata, and records the call's
//! `grpc-status` (from the headers of a trailers-only answer, else from the
//! trailers) on the span, marking anything but OK an error.

use crate::{
    grpc_status,
    spans::{Span, grpc_code_name},
};
use opentelemetry::{KeyValue, trace::SpanKind};
use std::{
    borrow::Cow,
    task::{Context, Poll},
};
use tonic::body::Body;
use tower::{Layer, Service};

/// Wraps channels in [`TraceClient`].
#[derive(Debug, Clone)]
pub struct TraceClientLayer {
    server_address: String,
    server_port: u16,
}

impl TraceClientLayer {
    /// For calls to the service at `url` (e.g. `http://127.0.0.1:50051`).
    pub fn new(url: &str) -> Self {
        let uri: Option<http::Uri> = url.parse().ok();
        Self {
            server_address: uri
                .as_ref()
                .and_then(|u| u.host())
                .unwrap_or_default()
                .trim_matches(['[', ']'])
                .to_owned(),
            server_port: uri.as_ref().and_then(http::Uri::port_u16).unwrap_or(80),
        }
    }
}

impl TraceClientLayer {
    /// `channel` with client spans and trace propagation.
    pub fn wrap(&self, channel: tonic::transport::Channel) -> TracedChannel {
        self.layer(channel)
    }
}

impl<S> Layer<S> for TraceClientLayer {
    type Service = TraceClient<S>;
    fn layer(&self, inner: S) -> TraceClient<S> {
        TraceClient {
            inner,
            server_address: self.server_address.clone(),
            server_port: self.server_port,
        }
    }
}

/// A traced gRPC channel; see the module docs.
#[derive(Debug, Clone)]
pub struct TraceClient<S> {
    inner: S,
    server_address: String,
    server_port: u16,
}

/// A channel with the client span layer, as every binary uses.
pub type TracedChannel = TraceClient<tonic::transport::Channel>;

/// `channel` with tracing for calls to `url`.
pub fn traced(channel: tonic::transport::Channel, url: &str) -> TracedChannel {
    TraceClientLayer::new(url).layer(channel)
}

impl<S> Service<http::Request<Body>> for TraceClient<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = crate::TracedCall<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        // The caller's span (the HTTP or gRPC server span of the request
        // being handled) is current while it makes the call.
        let path = req.uri().path().trim_start_matches('/');
        let span = opentelemetry::Context::map_current(|parent| {
            Span::start(
                SpanKind::Client,
                parent,
                || Cow::Owned(path.to_owned()),
                || {
                    let (service, method) = path.split_once('/').unwrap_or((path, ""));
                    [
                        KeyValue::new("rpc.system", "grpc"),
                        KeyValue::new("rpc.service", service.to_owned()),
                        KeyValue::new("rpc.method", method.to_owned()),
                        KeyValue::new("server.address", self.server_address.clone()),
                        KeyValue::new("server.port", i64::from(self.server_port)),
                    ]
                },
            )
        });
        crate::inject(span.context(), req.headers_mut());
        let call = self.inner.call(req);
        Box::pin(async move {
            match call.await {
                Ok(response) => {
                    if let Some(code) = grpc_status::from_headers(response.headers()) {
                        record(&span, code);
                    }
                    let (parts, body) = response.into_parts();
                    // The body keeps the span open until the trailers (or its drop).
                    let body = grpc_status::watch_trailers(body, move |code| record(&span, code));
                    Ok(http::Response::from_parts(parts, body))
                }
                Err(e) => {
                    let e: S::Error = e;
                    span.set_error("transport error");
                    Err(e)
                }
            }
        })
    }
}

fn record(span: &Span, code: i32) {
    span.set_attributes(|| [KeyValue::new("rpc.grpc.status_code", i64::from(code))]);
    if code != 0 {
        span.set_error(grpc_code_name(code));
    }
}
