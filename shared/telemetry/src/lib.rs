//! Observability of every binary: logs and traces (set up once per process
//! by [`init`] or [`init_suite`]), the gRPC span layers and the Prometheus
//! metrics.
//!
//! - Logs: `RUST_LOG` filters (default `info`); human-readable, or JSON lines
//!   with `LOG_FORMAT=json`. Every line logged inside a request ends with its
//!   `trace_id` and `span_id` ([`crate::log_format`]).
//! - Traces: the OpenTelemetry SDK, exported over OTLP by `opentelemetry-otlp`
//!   ([`crate::export`]) through the SDK's batch span processor, configured by
//!   the standard variables (`OTEL_EXPORTER_OTLP_[TRACES_]{ENDPOINT,PROTOCOL,
//!   HEADERS,COMPRESSION,TIMEOUT,CERTIFICATE,CLIENT_CERTIFICATE,CLIENT_KEY}`,
//!   `OTEL_BSP_*`, `OTEL_TRACES_SAMPLER[_ARG]`, `OTEL_SERVICE_NAME`,
//!   `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SDK_DISABLED`, `OTEL_PROPAGATORS`).
//!   With no endpoint set no span is made at all, so nothing slows down.
//! - Spans: the protocol spans (HTTP and gRPC servers, gRPC clients,
//!   database calls) are made by [`crate::spans`] on the OpenTelemetry API;
//!   any `tracing` span at INFO or above (`#[tracing::instrument]`,
//!   `info_span!`) is bridged by `tracing-opentelemetry` into the same trace,
//!   under the span current where it starts. That is the one way to add a span.
//! - Propagation: the SDK's propagators (`OTEL_PROPAGATORS`, default
//!   `tracecontext,baggage`), extracted by the servers and injected into every
//!   outgoing gRPC call by [`crate::grpc_client`].

#![forbid(unsafe_code)]

pub mod export;
pub mod grpc_client;
pub mod grpc_server;
pub mod grpc_status;
pub mod log_format;
pub mod metrics;
pub mod spans;

/// What the two gRPC tracing services return: the inner service's answer,
/// with the call's span ended when it is complete.
type TracedCall<E> = std::pin::Pin<
    Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, E>> + Send + 'static>,
>;

use crate::log_format::WithTraceIds;
use opentelemetry::{
    Context, KeyValue, global,
    propagation::{TextMapCompositePropagator, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_sdk::{
    Resource,
    propagation::{BaggagePropagator, TraceContextPropagator},
    trace::SdkTracerProvider,
};
use std::{collections::HashMap, io::IsTerminal};
use tracing::level_filters::LevelFilter;
use tracing_subscriber::{Layer, Registry, filter::Targets, fmt, prelude::*, registry::LookupSpan};

/// True when traces are exported; the propagation helpers do nothing otherwise.
pub fn exporting() -> bool {
    crate::spans::enabled()
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry: {0}")]
    Config(String),
}

/// What [`init`] set up; call [`Telemetry::shutdown`] before exiting so the
/// last spans are sent.
#[derive(Debug, Default)]
pub struct Telemetry {
    providers: Vec<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporters (each waits at most its timeout).
    pub async fn shutdown(self) {
        for provider in self.providers {
            // The SDK's shutdown blocks until its batch thread has exported;
            // the exporter's futures need this runtime, so wait off its threads.
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(e) = provider.shutdown() {
                    eprintln!("telemetry: flushing spans failed: {e}");
                }
            })
            .await;
        }
    }
}

/// Whether export is on: an endpoint is set and the SDK is not disabled.
fn export_configured() -> bool {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        || var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    let endpoint = export::either(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    )
    .is_some();
    endpoint && !disabled
}

fn json_logs() -> bool {
    std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"))
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
    let name = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| service_name.to_owned());
    install(&[], &name, version, writer)
}

/// For the one-process suite: each of `services` (binary names such as
/// `suite-user`) exports under its own `service.name`, so a trace shows
/// gateway → auth → user; spans of no service (shared crates, libraries)
/// under `process_name`.
pub fn init_suite(
    process_name: &str,
    services: &[&str],
    version: &str,
) -> Result<Telemetry, TelemetryError> {
    install(services, process_name, version, std::io::stdout)
}

fn install<W>(
    services: &[&str],
    default_name: &str,
    version: &str,
    writer: W,
) -> Result<Telemetry, TelemetryError>
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    if tracing::dispatcher::has_been_set() {
        // Already installed (a second service in the same process): no
        // second exporter either.
        return Ok(Telemetry::default());
    }
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
    };
    if !export_configured() {
        let log = log_layer(json_logs(), writer).with_filter(filter());
        let _ = tracing_subscriber::registry().with(log).try_init();
        return Ok(Telemetry::default());
    }
    let propagator = propagator()?;
    let protocol = export::Protocol::from_env()?;
    let default = provider(default_name, version, protocol)?;
    let mut by_service = HashMap::new();
    let mut bridges: Vec<Box<dyn Layer<Registry> + Send + Sync>> = Vec::new();
    // Spans of the suite's own crates go to their service; the rest (and
    // everything, in a one-service process) to the default.
    let mut rest = Targets::new().with_default(LevelFilter::INFO);
    for service in services {
        let p = provider(service, version, protocol)?;
        let target = service.replace('-', "_");
        rest = rest.with_target(target.clone(), LevelFilter::OFF);
        bridges.push(bridge(
            &p,
            Targets::new().with_target(target, LevelFilter::INFO),
        ));
        by_service.insert((*service).to_owned(), p);
    }
    bridges.push(bridge(&default, rest));
    let installed = tracing_subscriber::registry()
        .with(bridges)
        .with(log_layer(json_logs(), writer).with_filter(filter()))
        .try_init();
    if installed.is_err() {
        return Ok(Telemetry::default());
    }
    export::register();
    spans::install(
        by_service
            .iter()
            .map(|(name, p)| (name.clone(), p.tracer("suite")))
            .collect(),
        default.tracer("suite"),
        std::env::var("OTEL_TRACES_SAMPLER").ok().as_deref(),
    );
    // For any library that asks the global API.
    global::set_tracer_provider(default.clone());
    global::set_text_map_propagator(propagator);
    tracing::info!(?protocol, "exporting traces over OTLP");
    let mut providers: Vec<SdkTracerProvider> = by_service.into_values().collect();
    providers.push(default);
    Ok(Telemetry { providers })
}

/// The `tracing` bridge into `provider`'s traces, for the spans `targets` admits.
fn bridge(
    provider: &SdkTracerProvider,
    targets: Targets,
) -> Box<dyn Layer<Registry> + Send + Sync> {
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("tracing"))
        // Timings of idle and busy time: attributes nobody asked for.
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_filter(targets)
        .boxed()
}

/// `OTEL_PROPAGATORS`: `tracecontext` and `baggage` (the default, both),
/// `none`; anything else is refused at start-up: B3's propagator lives in
/// `opentelemetry-zipkin`, deprecated with it, and Jaeger's crate has no
/// release for this OpenTelemetry version.
fn propagator() -> Result<TextMapCompositePropagator, TelemetryError> {
    propagator_from(&std::env::var("OTEL_PROPAGATORS").unwrap_or_default())
}

fn propagator_from(value: &str) -> Result<TextMapCompositePropagator, TelemetryError> {
    let value = if value.trim().is_empty() {
        "tracecontext,baggage".to_owned()
    } else {
        value.to_owned()
    };
    let mut all: Vec<Box<dyn TextMapPropagator + Send + Sync>> = Vec::new();
    for name in value.split(',').map(|n| n.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "tracecontext" => all.push(Box::new(TraceContextPropagator::new())),
            "baggage" => all.push(Box::new(BaggagePropagator::new())),
            "none" | "" => {}
            other => {
                return Err(TelemetryError::Config(format!(
                    "OTEL_PROPAGATORS: {other:?} is not supported by this build \
                     (tracecontext, baggage or none: B3's propagator is deprecated with \
                     opentelemetry-zipkin, and jaeger's has no release for this OpenTelemetry version)"
                )));
            }
        }
    }
    Ok(TextMapCompositePropagator::new(all))
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

/// A provider exporting `service_name`'s spans through its own batch
/// processor (bounded queue, `OTEL_BSP_*`) and exporter.
fn provider(
    service_name: &str,
    version: &str,
    protocol: export::Protocol,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = export::exporter(protocol)?;
    // OTEL_RESOURCE_ATTRIBUTES come from the environment; the service's name,
    // version and instance are ours, on top.
    let from_env = Resource::builder().build();
    let mut resource = Resource::builder_empty();
    for (key, value) in from_env.iter() {
        if key.as_str() != "service.name" {
            resource = resource.with_attribute(KeyValue::new(key.clone(), value.clone()));
        }
    }
    let resource = resource
        .with_attributes([
            KeyValue::new("service.name", service_name.to_owned()),
            KeyValue::new("service.version", version.to_owned()),
            KeyValue::new("service.instance.id", uuid::Uuid::now_v7().to_string()),
        ])
        .build();
    Ok(SdkTracerProvider::builder()
        .with_span_processor(export::processor(exporter))
        .with_resource(resource)
        .build())
}

/// The trace context of incoming `headers` (by the configured propagators);
/// the empty context when not exporting.
pub fn extract(headers: &http::HeaderMap) -> Context {
    if !exporting() {
        return Context::new();
    }
    global::get_text_map_propagator(|p| p.extract(&opentelemetry_http::HeaderExtractor(headers)))
}

/// Writes the trace context `cx` into outgoing `headers`.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    if !exporting() {
        return;
    }
    global::get_text_map_propagator(|p| {
        p.inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers))
    });
    // New on every call: kept out of HPACK's table, where it would only push
    // out the headers that repeat (and cost the indexing).
    if let Some(v) = headers.get_mut("traceparent") {
        v.set_sensitive(true);
    }
}

/// The W3C `traceparent` of the current span (none when not exporting, or
/// outside any span): what an event records of the request that caused it.
pub fn current_traceparent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    Context::map_current(|cx| {
        let ids = cx.span().span_context().clone();
        ids.is_valid().then(|| {
            format!(
                "00-{}-{}-{:02x}",
                ids.trace_id(),
                ids.span_id(),
                ids.trace_flags().to_u8()
            )
        })
    })
}

/// The current trace's id, for error bodies (none when not exporting).
pub fn current_trace_id() -> Option<String> {
    crate::spans::current_ids().map(|(trace_id, _)| trace_id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceContextExt;

    #[test]
    fn propagators_are_the_named_ones_and_others_are_refused() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", traceparent.parse().expect("ascii"));
        let trace_of = |names: &str| {
            let p = propagator_from(names).expect(names);
            let cx = p.extract(&opentelemetry_http::HeaderExtractor(&headers));
            cx.span().span_context().trace_id().to_string()
        };
        assert_eq!(trace_of(""), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace_of("baggage"), "00000000000000000000000000000000");
        assert_eq!(trace_of("none"), "00000000000000000000000000000000");
        let refused = propagator_from("tracecontext,b3")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            refused.contains("OTEL_PROPAGATORS") && refused.contains("b3"),
            "{refused}"
        );
    }
}
