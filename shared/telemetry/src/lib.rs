//! Observability of every binary: logs and traces (set up once per binary
//! by [`init`]), the gRPC span layers and the Prometheus metrics.
//!
//! - Logs: `RUST_LOG` filters (default `info`); human-readable, or JSON lines
//!   with `LOG_FORMAT=json`. Every line logged inside a request ends with its
//!   `trace_id` and `span_id` ([`crate::log_format`]).
//! - Traces: OpenTelemetry over OTLP, driven by the standard variables
//!   (`OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
//!   `OTEL_EXPORTER_OTLP_PROTOCOL` = `grpc` (default) or `http/protobuf`,
//!   `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//!   and `OTEL_TRACES_SAMPLER_ARG`, `OTEL_SDK_DISABLED`). Batch export; flushed
//!   by [`Telemetry::shutdown`]. The spans themselves are made in
//!   [`crate::spans`]. With no endpoint set no span is made at all, so
//!   nothing slows down.
//! - Propagation: W3C Trace Context and Baggage, extracted from incoming
//!   headers by the servers and injected into every outgoing gRPC call by
//!   [`crate::grpc_client`].

#![forbid(unsafe_code)]

pub mod grpc_client;
pub mod grpc_server;
pub mod grpc_status;
pub mod log_format;
pub mod metrics;
pub mod otlp;
pub mod spans;
pub mod trace_context;

use crate::{
    log_format::WithTraceIds,
    otlp::{
        OtlpExporter, Protocol,
        processor::{BatchSettings, EncodingBatchProcessor},
    },
};
use opentelemetry::{
    Context, KeyValue,
    baggage::BaggageExt,
    global,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_sdk::{
    Resource,
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::SdkTracerProvider,
};
use std::{io::IsTerminal, time::Duration};
use tracing_subscriber::{EnvFilter, Layer, fmt, prelude::*, registry::LookupSpan};

const BAGGAGE: http::HeaderName = http::HeaderName::from_static("baggage");

/// True when traces are exported; the propagation helpers do nothing otherwise.
pub fn exporting() -> bool {
    crate::spans::enabled()
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
    /// The endpoint is the traces one (a full URL, not a base).
    traces_endpoint: bool,
    protocol: String,
    /// The variable that set it, and its value, for error messages.
    headers: Option<(&'static str, String)>,
    timeout: Option<(&'static str, String)>,
    compression: Option<(&'static str, String)>,
    disabled: bool,
    json: bool,
}

impl Settings {
    fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        // The traces-only variable wins over the general one.
        let either = |traces: &'static str, general: &'static str| {
            var(traces)
                .map(|v| (traces, v))
                .or_else(|| var(general).map(|v| (general, v)))
        };
        let traces_endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let endpoint = traces_endpoint
            .clone()
            .or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
        let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"));
        Self {
            endpoint,
            traces_endpoint: traces_endpoint.is_some(),
            headers: either(
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "OTEL_EXPORTER_OTLP_HEADERS",
            ),
            timeout: either(
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
            ),
            compression: either(
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ),
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry =
        tracing_subscriber::registry().with(log_layer(settings.json, writer).with_filter(filter));
    if registry.try_init().is_err() {
        // Already installed (a second service in the same process): no
        // second exporter either.
        return Ok(Telemetry { provider: None });
    }
    let provider = match (&settings.endpoint, settings.disabled) {
        (Some(endpoint), false) => Some(provider(service_name, version, endpoint, &settings)?),
        _ => None,
    };
    if let Some(p) = &provider {
        crate::spans::install(
            p.tracer("suite"),
            std::env::var("OTEL_TRACES_SAMPLER").ok().as_deref(),
        );
        // For any library that asks the global API.
        global::set_tracer_provider(p.clone());
        global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
            Box::new(TraceContextPropagator::new()),
            Box::new(BaggagePropagator::new()),
        ]));
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
            .event_format(WithTraceIds::new(fmt::format().json(), true))
            .with_writer(writer)
            .boxed()
    } else {
        // Colours only for a person at a terminal, never into files.
        let ansi = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        fmt::layer()
            .with_ansi(ansi)
            .event_format(WithTraceIds::new(fmt::format().with_ansi(ansi), false))
            .with_writer(writer)
            .boxed()
    }
}

fn provider(
    service_name: &str,
    version: &str,
    endpoint: &str,
    settings: &Settings,
) -> Result<SdkTracerProvider, TelemetryError> {
    let (protocol, url) = match settings.protocol.to_ascii_lowercase().as_str() {
        "grpc" => (Protocol::Grpc, endpoint.to_owned()),
        // OTEL_EXPORTER_OTLP_ENDPOINT is a base URL; the signal path is ours to add.
        "http/protobuf" if settings.traces_endpoint => {
            (Protocol::HttpProtobuf, endpoint.to_owned())
        }
        "http/protobuf" => (
            Protocol::HttpProtobuf,
            format!("{}/v1/traces", endpoint.trim_end_matches('/')),
        ),
        other => return Err(TelemetryError::Protocol(other.to_owned())),
    };
    let headers = match &settings.headers {
        Some((name, value)) => otlp::parse_headers(value)
            .map_err(|e| TelemetryError::Exporter(format!("{name}: {e}")))?,
        None => Vec::new(),
    };
    let timeout = match &settings.timeout {
        Some((name, value)) => value
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| {
                TelemetryError::Exporter(format!("{name}={value:?}: give milliseconds"))
            })?,
        None => Duration::from_secs(10),
    };
    if let Some((name, value)) = &settings.compression
        && !value.eq_ignore_ascii_case("none")
    {
        // Collectors take uncompressed batches too: a warning, not a refusal.
        eprintln!("telemetry: {name}={value} is not supported; sending spans uncompressed");
    }
    let exporter =
        OtlpExporter::new(protocol, &url, &headers, timeout).map_err(TelemetryError::Exporter)?;
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
    let batch = BatchSettings::from_env().map_err(TelemetryError::Exporter)?;
    let processor = EncodingBatchProcessor::new(exporter, batch, timeout);
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
    let cx = if headers.contains_key(BAGGAGE) {
        BaggagePropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers))
    } else {
        Context::new()
    };
    match trace_context::read(headers) {
        Some(parent) => cx.with_remote_span_context(parent),
        None => cx,
    }
}

/// Writes the trace context `cx` into outgoing `headers`.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    if !exporting() {
        return;
    }
    trace_context::write(cx.span().span_context(), headers);
    if !cx.baggage().is_empty() {
        BaggagePropagator::new()
            .inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers));
    }
}

/// The current trace's id, for error bodies (none when not exporting).
pub fn current_trace_id() -> Option<String> {
    crate::spans::current_ids().map(|(trace_id, _)| trace_id.to_string())
}
