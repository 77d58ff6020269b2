//! Prometheus metrics of the process: one registry for every service in it,
//! holding the servers' metrics named after the OpenTelemetry semantic
//! conventions (units in the name, dots as underscores:
//! `http_server_request_duration_seconds`, `rpc_server_call_duration_seconds`)
//! and whatever each crate registers of its own with [`Metrics::register`]
//! (the database pools, the services' `suite_` metrics). Encoded as
//! Prometheus text for `/metrics` on each binary's admin port (`ADMIN_ADDR`,
//! served by `suite_runtime::admin`), never on a public one.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Metric, Registry},
};
use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub http_request_method: String,
    pub http_route: String,
    pub http_response_status_code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub rpc_service: String,
    pub rpc_method: String,
    pub rpc_grpc_status_code: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcServiceLabels {
    pub rpc_service: String,
}

/// The process's registry and the servers' metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub http_server_duration: Family<HttpLabels, Histogram>,
    pub http_server_active: Gauge,
    pub rpc_server_duration: Family<RpcLabels, Histogram>,
    pub rpc_server_active: Family<RpcServiceLabels, Gauge>,
    /// Read at scrape time (pool usage), by name: a newer one replaces an
    /// older one, so a replaced pool is not kept alive.
    samplers: Mutex<HashMap<String, Box<dyn Fn() + Send + Sync>>>,
}

/// Seconds; from 0.5 ms (a cached lookup) to 10 s (the default budget).
pub fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ])
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let http_server_duration =
            Family::<HttpLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register_with_unit(
            "http_server_request_duration",
            "Duration of HTTP requests served by the gateway (count: requests, by status)",
            prometheus_client::registry::Unit::Seconds,
            http_server_duration.clone(),
        );
        let http_server_active = Gauge::default();
        registry.register(
            "http_server_active_requests",
            "HTTP requests being served",
            http_server_active.clone(),
        );
        let rpc_server_duration =
            Family::<RpcLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        registry.register_with_unit(
            "rpc_server_call_duration",
            "Duration of gRPC calls served (count: calls, by status code)",
            prometheus_client::registry::Unit::Seconds,
            rpc_server_duration.clone(),
        );
        let rpc_server_active = Family::<RpcServiceLabels, Gauge>::default();
        registry.register(
            "rpc_server_active_calls",
            "gRPC calls being served",
            rpc_server_active.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            http_server_duration,
            http_server_active,
            rpc_server_duration,
            rpc_server_active,
            samplers: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a metric of the caller's to the registry (once: the callers keep
    /// theirs in a `LazyLock`).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.register(name, help, metric);
        }
    }

    /// Registers `metric` and gives it back, so that a crate's metrics are
    /// built and registered in one expression each (the registry keeps a
    /// handle to the same values).
    pub fn registered<M: Metric + Clone>(&self, name: &str, help: &str, metric: M) -> M {
        self.register(name, help, metric.clone());
        metric
    }

    /// Sets the function `name` run before each scrape (to read a gauge's source).
    pub fn on_scrape(&self, name: &str, sampler: impl Fn() + Send + Sync + 'static) {
        if let Ok(mut samplers) = self.samplers.lock() {
            samplers.insert(name.to_owned(), Box::new(sampler));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        if let Ok(samplers) = self.samplers.lock() {
            for sample in samplers.values() {
                sample();
            }
        }
        let mut text = String::new();
        if let Ok(registry) = self.registry.lock() {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        }
        text
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The content type of [`Metrics::encode`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
