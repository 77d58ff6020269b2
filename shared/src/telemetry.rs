//! Logs and traces, set up once per binary.
//!
//! - Logs: `RUST_LOG` filters (default `info`); human-readable, or JSON lines
//!   with `LOG_FORMAT=json`. Request spans carry `trace_id` and `span_id`, so
//!   every line logged inside a request names its trace.
//! - Traces: OpenTelemetry over OTLP, driven by the standard variables
//!   (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//!   `OTEL_EXPORTER_OTLP_PROTOCOL` = `grpc` (default) or `http/protobuf`,
//!   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//!   and `OTEL_TRACES_SAMPLER_ARG`, `OTEL_SDK_DISABLED`). Batch export; flushed
//!   by [`Telemetry::shutdown`]. With no endpoint set nothing is exported and
//!   no OpenTelemetry layer runs at all, so nothing slows down.
//! - Propagation: W3C Trace Context and Baggage, extracted from incoming
//!   headers by the servers and injected into every outgoing gRPC call by
//!   [`crate::trace_client`].

use opentelemetry::{
    Context, KeyValue, global,
    propagation::TextMapCompositePropagator,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{
    Resource,
    propagation::{BaggagePropagator, TraceContextPropagator},
    runtime,
    trace::{SdkTracerProvider, span_processor_with_async_runtime::BatchSpanProcessor},
};
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*, registry::LookupSpan};

/// Whether spans are exported (an OpenTelemetry layer is installed).
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// True when traces are exported; the propagation helpers do nothing otherwise.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0:?}: use grpc or http/protobuf")]
    Protocol(String),
}

/// What [`init`] set up; call [`Telemetry::shutdown`] before exiting so the
/// last spans are sent.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter (waits at most the export timeout).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // The SDK's shutdown blocks until the batch task has exported;
            // that task runs on this runtime, so wait off its worker threads.
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = provider.shutdown() {
                    eprintln!("telemetry: flushing spans failed: {e}");
                }
            })
            .await;
        }
    }
}

/// The settings read from the environment.
#[derive(Debug, Clone)]
struct Settings {
    endpoint: Option<String>,
    protocol: String,
    disabled: bool,
    json: bool,
}

impl Settings {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        Self {
            endpoint,
            protocol: var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
                .unwrap_or_else(|| "grpc".to_owned()),
            disabled,
            json: var("LOG_FORMAT").is_some_and(|v| v.eq_ignore_ascii_case("json")),
        }
    }
}

/// Installs logging and (when configured) trace export for the binary
/// `service_name` at `version`; `OTEL_SERVICE_NAME` overrides the name.
/// Must run inside the tokio runtime. Later calls in the same process only
/// return a handle that does nothing.
pub fn init(service_name: &str, version: &str) -> Result<Telemetry, TelemetryError> {
    init_with_writer(service_name, version, std::io::stdout)
}

/// [`init`], with log lines going to `writer` (tests capture them).
pub fn init_with_writer<W>(
    service_name: &str,
    version: &str,
    writer: W,
) -> Result<Telemetry, TelemetryError>
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let settings = Settings::from_env();
    let provider = match (&settings.endpoint, settings.disabled) {
        (Some(endpoint), false) => Some(provider(service_name, version, endpoint, &settings)?),
        _ => None,
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Each layer filters for itself: `RUST_LOG=warn` quiets the logs, not
    // the traces (the request, RPC and database spans are at info).
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("suite"))
            // Per-span code locations and thread names cost allocations on
            // every span and tell nothing the span's name does not.
            .with_tracked_inactivity(false)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            // Contexts are taken from spans explicitly (see `inject`): no
            // need to attach one to the thread on every poll of every span.
            .with_context_activation(false)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let registry = tracing_subscriber::registry()
        .with(log_layer(settings.json, writer).with_filter(filter))
        .with(otel_layer);
    if registry.try_init().is_err() {
        // Already installed (a second service in the same process).
        return Ok(Telemetry { provider: None });
    }
    if let Some(p) = &provider {
        global::set_tracer_provider(p.clone());
        global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
        EXPORTING.store(true, Ordering::Relaxed);
        tracing::info!(
            endpoint = settings.endpoint.as_deref().unwrap_or_default(),
            protocol = %settings.protocol,
            "exporting traces over OTLP"
        );
    }
    Ok(Telemetry { provider })
}

fn log_layer<S, W>(json: bool, writer: W) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    if json {
        fmt::layer()
            .json()
            .with_current_span(true)
            // The request span (with trace_id/span_id) is in the list even
            // when a database span is the current one.
            .with_span_list(true)
            .with_writer(writer)
            .boxed()
    } else {
        fmt::layer().with_writer(writer).boxed()
    }
}

fn provider(
    service_name: &str,
    version: &str,
    endpoint: &str,
    settings: &Settings,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = match settings.protocol.to_ascii_lowercase().as_str() {
        "grpc" => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build(),
        "http/protobuf" => {
            // OTEL_EXPORTER_OTLP_ENDPOINT is a base URL; the signal path is ours to add.
            let url = if std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_ok() {
                endpoint.to_owned()
            } else {
                format!("{}/v1/traces", endpoint.trim_end_matches('/'))
            };
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(url)
                .build()
        }
        other => return Err(TelemetryError::Protocol(other.to_owned())),
    }
    .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    // The resource builder reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
    // itself; ours are the defaults underneath them.
    let mut resource = Resource::builder_empty().with_attributes([
        KeyValue::new("service.name", service_name.to_owned()),
        KeyValue::new("service.version", version.to_owned()),
        KeyValue::new("service.instance.id", uuid::Uuid::now_v7().to_string()),
    ]);
    let from_env = Resource::builder().build();
    for (key, value) in from_env.iter() {
        // The SDK's fallback name ("unknown_service") never beats ours.
        if key.as_str() == "service.name" && std::env::var("OTEL_SERVICE_NAME").is_err() {
            continue;
        }
        resource = resource.with_attribute(KeyValue::new(key.clone(), value.clone()));
    }
    // Under load the spec's defaults (a 2048-span queue, one export at a
    // time) drop most spans; the OTEL_BSP_* variables still win.
    let mut batch = opentelemetry_sdk::trace::BatchConfigBuilder::default();
    if std::env::var("OTEL_BSP_MAX_QUEUE_SIZE").is_err() {
        batch = batch.with_max_queue_size(16_384);
    }
    if std::env::var("OTEL_BSP_MAX_CONCURRENT_EXPORTS").is_err() {
        batch = batch.with_max_concurrent_exports(2);
    }
    let processor = BatchSpanProcessor::builder(exporter, runtime::Tokio)
        .with_batch_config(batch.build())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build())
}

/// The trace context of incoming `headers` (W3C `traceparent`, `tracestate`,
/// `baggage`); the empty context when not exporting.
pub fn extract(headers: &http::HeaderMap) -> Context {
    if !exporting() {
        return Context::new();
    }
    global::get_text_map_propagator(|p| p.extract(&opentelemetry_http::HeaderExtractor(headers)))
}

/// Writes `span`'s context into outgoing `headers`.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    if !exporting() {
        return;
    }
    let cx = span.context();
    global::get_text_map_propagator(|p| {
        p.inject_context(&cx, &mut opentelemetry_http::HeaderInjector(headers));
    });
}

/// Continues the trace of `headers` in `span` (a server span) and records its
/// ids on it as `trace_id` and `span_id`, for the log lines inside it.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !exporting() {
        return;
    }
    let _ = span.set_parent(extract(headers));
    record_ids(span);
}

/// Records `span`'s OpenTelemetry ids on its `trace_id` and `span_id` fields.
pub fn record_ids(span: &tracing::Span) {
    if !exporting() {
        return;
    }
    let cx = span.context();
    let otel = cx.span();
    let ids = otel.span_context();
    if ids.is_valid() {
        span.record("trace_id", ids.trace_id().to_string());
        span.record("span_id", ids.span_id().to_string());
    }
}

/// The current trace's id, for error bodies (empty when not exporting).
pub fn current_trace_id() -> Option<String> {
    if !exporting() {
        return None;
    }
    let cx = tracing::Span::current().context();
    let otel = cx.span();
    let ids = otel.span_context();
    ids.is_valid().then(|| ids.trace_id().to_string())
}

/// Marks `span` failed with `message` (OpenTelemetry status Error).
pub fn set_error(span: &tracing::Span, message: &str) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", message);
}
