//! OTLP export by `opentelemetry-otlp`: gRPC (tonic) or HTTP/protobuf
//! (reqwest), as `OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL` says. The crate reads
//! the endpoint, headers, compression and timeout variables itself, retries
//! what a collector asks to be retried (with backoff, honouring
//! `Retry-After`) and reads partial-success replies. What it leaves to its
//! users is TLS beyond the public roots: `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE`
//! (a private CA), `..._CLIENT_CERTIFICATE` and `..._CLIENT_KEY` (mutual
//! TLS), read here. Every batch is counted (`suite_otlp_spans_total`), so a
//! collector that is down or refusing shows in the metrics.

use crate::TelemetryError;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::{Resource, error::OTelSdkResult, trace::SpanData};
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use std::{
    sync::{
        Arc, LazyLock,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

/// A variable's value, the traces-only one winning over the general one,
/// with the name of the one that was set.
pub(crate) fn either(
    traces: &'static str,
    general: &'static str,
) -> Option<(&'static str, String)> {
    let var = |name: &'static str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    var(traces).or_else(|| var(general))
}

/// The wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Grpc,
    HttpProtobuf,
}

impl Protocol {
    pub fn from_env() -> Result<Self, TelemetryError> {
        match either(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ) {
            None => Ok(Self::Grpc),
            Some((_, v)) if v.trim().eq_ignore_ascii_case("grpc") => Ok(Self::Grpc),
            Some((_, v)) if v.trim().eq_ignore_ascii_case("http/protobuf") => {
                Ok(Self::HttpProtobuf)
            }
            Some((name, v)) => Err(TelemetryError::Config(format!(
                "{name}={v:?}: use grpc or http/protobuf"
            ))),
        }
    }
}

/// The PEM files for TLS, as configured.
#[derive(Debug, Default)]
struct TlsFiles {
    ca: Option<Vec<u8>>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsFiles {
    fn from_env() -> Result<Self, TelemetryError> {
        let read = |(name, path): (&'static str, String)| {
            std::fs::read(path.trim())
                .map_err(|e| TelemetryError::Config(format!("{name}={path:?}: {e}")))
        };
        let ca = either(
            "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
        )
        .map(read)
        .transpose()?;
        let cert = either(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        );
        let key = either(
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        );
        let client = match (cert, key) {
            (Some(cert), Some(key)) => Some((read(cert)?, read(key)?)),
            (None, None) => None,
            _ => {
                return Err(TelemetryError::Config(
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY go together"
                        .into(),
                ));
            }
        };
        Ok(Self { ca, client })
    }
}

/// The exporter the standard variables describe.
pub fn exporter(protocol: Protocol) -> Result<CountingExporter, TelemetryError> {
    let tls = TlsFiles::from_env()?;
    let built = match protocol {
        Protocol::Grpc => {
            let mut builder = SpanExporter::builder().with_tonic();
            if https_endpoint() || tls.ca.is_some() || tls.client.is_some() {
                builder = builder.with_tls_config(tonic_tls(&tls));
            }
            builder.build()
        }
        Protocol::HttpProtobuf => {
            // Always our client: reqwest's own would need a process-wide
            // rustls provider (we use ring, as the rest of the tree).
            SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_http_client(reqwest_client(&tls, timeout()?)?)
                .build()
        }
    }
    .map_err(|e| TelemetryError::Config(e.to_string()))?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| TelemetryError::Config("set up outside a tokio runtime".into()))?;
    Ok(CountingExporter {
        inner: Arc::new(built),
        runtime,
        failing: AtomicBool::new(false),
        queued: Arc::new(AtomicUsize::new(0)),
    })
}

/// The queue size (`OTEL_BSP_MAX_QUEUE_SIZE`, else larger than the SDK's
/// 2048, so a burst of load does not drop spans).
pub fn queue_size() -> usize {
    std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(16_384)
}

/// The SDK's batch processor over `exporter`, admitting spans only while its
/// queue has room, so every span dropped is counted (the SDK only logs them).
pub fn processor(exporter: CountingExporter) -> CountingProcessor {
    let capacity = queue_size();
    let queued = exporter.queued.clone();
    let config = opentelemetry_sdk::trace::BatchConfigBuilder::default()
        .with_max_queue_size(capacity)
        .build();
    CountingProcessor {
        inner: opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
            .with_batch_config(config)
            .build(),
        queued,
        capacity,
        warned: AtomicBool::new(false),
    }
}

/// See [`processor`].
#[derive(Debug)]
pub struct CountingProcessor {
    inner: opentelemetry_sdk::trace::BatchSpanProcessor,
    /// Spans handed on and not yet exported or failed.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    warned: AtomicBool,
}

impl opentelemetry_sdk::trace::SpanProcessor for CountingProcessor {
    fn on_start(&self, span: &mut opentelemetry_sdk::trace::Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        let admitted = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_ok();
        if admitted {
            self.inner.on_end(span);
            return;
        }
        SPANS
            .get_or_create(&ResultLabels { result: "dropped" })
            .inc();
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                queue = self.capacity,
                "the span queue is full: dropping spans (counted in suite_otlp_spans_total)"
            );
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// `OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`, milliseconds (default 10 s).
fn timeout() -> Result<Duration, TelemetryError> {
    match either(
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ) {
        None => Ok(Duration::from_secs(10)),
        Some((name, v)) => v
            .trim()
            .parse()
            .map(Duration::from_millis)
            .map_err(|_| TelemetryError::Config(format!("{name}={v:?}: give milliseconds"))),
    }
}

fn https_endpoint() -> bool {
    either(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    )
    .is_some_and(|(_, v)| v.trim().to_ascii_lowercase().starts_with("https://"))
}

/// The public roots (webpki's), plus a private CA and a client identity if given.
fn tonic_tls(tls: &TlsFiles) -> tonic::transport::ClientTlsConfig {
    let mut config = tonic::transport::ClientTlsConfig::new().with_webpki_roots();
    if let Some(ca) = &tls.ca {
        config = config.ca_certificate(tonic::transport::Certificate::from_pem(ca));
    }
    if let Some((cert, key)) = &tls.client {
        config = config.identity(tonic::transport::Identity::from_pem(cert, key));
    }
    config
}

/// A reqwest client on rustls (with ring, as the rest of the tree) that
/// trusts the public roots and the private CA, presenting the client
/// identity if given.
fn reqwest_client(tls: &TlsFiles, timeout: Duration) -> Result<reqwest::Client, TelemetryError> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let bad =
        |what: &str, e: &dyn std::fmt::Display| TelemetryError::Config(format!("{what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(ca) = &tls.ca {
        for cert in CertificateDer::pem_slice_iter(ca) {
            let cert = cert.map_err(|e| bad("OTEL_EXPORTER_OTLP_CERTIFICATE", &e))?;
            roots
                .add(cert)
                .map_err(|e| bad("OTEL_EXPORTER_OTLP_CERTIFICATE", &e))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("TLS", &e))?
        .with_root_certificates(roots);
    let config = match &tls.client {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", &e))?;
            let key = PrivateKeyDer::from_pem_slice(key)
                .map_err(|e| bad("OTEL_EXPORTER_OTLP_CLIENT_KEY", &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad("OTEL_EXPORTER_OTLP_CLIENT_KEY", &e))?
        }
        None => builder.with_no_client_auth(),
    };
    reqwest::Client::builder()
        .timeout(timeout)
        .tls_backend_preconfigured(config)
        .build()
        .map_err(|e| bad("the HTTP client", &e))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Spans by what became of them: `exported`; `failed` (dropped after the
/// exporter's retries); `dropped` (the queue was full: the collector is
/// slower than the spans come).
static SPANS: LazyLock<Family<ResultLabels, Counter>> = LazyLock::new(|| {
    let family = Family::<ResultLabels, Counter>::default();
    crate::metrics::metrics().register(
        "suite_otlp_spans",
        "Spans ended for export, by result (exported, failed, dropped: queue full)",
        family.clone(),
    );
    family
});

/// The crate's exporter, counting what it sends and logging when export
/// starts failing and when it works again (once each, not once per batch).
#[derive(Debug)]
pub struct CountingExporter {
    inner: Arc<SpanExporter>,
    /// Where each export runs: the SDK's batch thread has no runtime, and
    /// the transports (tonic, reqwest) need tokio's.
    runtime: tokio::runtime::Handle,
    failing: AtomicBool,
    queued: Arc<AtomicUsize>,
}

impl opentelemetry_sdk::trace::SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len() as u64;
        let inner = self.inner.clone();
        let result = match self
            .runtime
            .spawn(async move { inner.export(batch).await })
            .await
        {
            Ok(result) => result,
            Err(e) => Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                e.to_string(),
            )),
        };
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(spans as usize))
            });
        let label = if result.is_ok() { "exported" } else { "failed" };
        SPANS
            .get_or_create(&ResultLabels { result: label })
            .inc_by(spans);
        match &result {
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("exporting spans again");
            }
            // The error's kind only: a collector's message may echo credentials.
            Err(_) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(
                    spans,
                    "exporting spans failed; dropping them until it works again"
                );
            }
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Set once, before the first export: the only reference then.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

/// Registers the counters now, so a scrape shows them before the first batch.
pub fn register() {
    LazyLock::force(&SPANS);
}
