//! An in-process OTLP/gRPC trace collector for the telemetry tests: it keeps
//! every span with its service's name, records each call's `grpc-encoding`,
//! and can refuse its first calls (Unavailable) to play a collector that is
//! still starting.

use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value},
    trace::v1::Span,
};
use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

/// Everything a collector received (service name, span), what it saw of the
/// transport, and how many calls it is yet to refuse.
#[derive(Default, Clone)]
pub struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    encodings: Arc<Mutex<Vec<String>>>,
    /// Calls still to be refused with Unavailable.
    pub refuse: Arc<AtomicUsize>,
    /// Calls refused so far.
    pub refused: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        if self
            .refuse
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(tonic::Status::unavailable("warming up"));
        }
        let mut all = self.spans.lock().expect("lock");
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| attr(&r.attributes, "service.name"))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    all.push((service.clone(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// The spans received so far, with their services' names.
    pub fn spans(&self) -> Vec<(String, Span)> {
        self.spans.lock().expect("lock").clone()
    }

    /// The `grpc-encoding` of each call so far (`identity` when none).
    pub fn encodings(&self) -> Vec<String> {
        self.encodings.lock().expect("lock").clone()
    }

    /// Waits (bounded) until `done` holds of the spans received.
    pub async fn eventually(&self, what: &str, done: impl Fn(&[(String, Span)]) -> bool) {
        crate::eventually(
            &format!("the collector received {what}"),
            Duration::from_secs(30),
            async || done(&self.spans()),
        )
        .await;
    }

    /// Serves on a fresh port (with TLS if `tls` is a certificate and key).
    pub async fn start(&self, tls: Option<(String, String)>) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut server = tonic::transport::Server::builder();
        if let Some((cert, key)) = tls {
            server = server
                .tls_config(
                    tonic::transport::ServerTlsConfig::new()
                        .identity(tonic::transport::Identity::from_pem(cert, key)),
                )
                .expect("tls");
        }
        let encodings = self.encodings.clone();
        let record =
            tower::util::MapRequestLayer::new(move |req: http::Request<tonic::body::Body>| {
                let encoding = req
                    .headers()
                    .get("grpc-encoding")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("identity")
                    .to_owned();
                encodings.lock().expect("lock").push(encoding);
                req
            });
        let service = TraceServiceServer::new(self.clone())
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        tokio::spawn(
            server
                .layer(record)
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        addr
    }
}

/// An attribute's value as text (strings as they are; numbers and booleans
/// printed).
pub fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// The attribute `key`'s value as text.
pub fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .map(text)
}

/// A trace or span id in lowercase hex, as `traceparent` and logs print it.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
