//! The user service's own metrics, registered with the process's registry
//! the first time they are used (or at start-up, by [`register`]).

use prometheus_client::metrics::gauge::Gauge;
use std::sync::LazyLock;

pub struct UserMetrics {
    pub password_hash_queued: Gauge,
    pub password_hash_running: Gauge,
}

static METRICS: LazyLock<UserMetrics> = LazyLock::new(|| {
    let registry = suite_telemetry::metrics::metrics();
    let m = UserMetrics {
        password_hash_queued: Gauge::default(),
        password_hash_running: Gauge::default(),
    };
    registry.register(
        "suite_password_hash_queue_depth",
        "Password hashes waiting for a hashing thread",
        m.password_hash_queued.clone(),
    );
    registry.register(
        "suite_password_hash_running",
        "Password hashes being computed",
        m.password_hash_running.clone(),
    );
    m
});

pub fn metrics() -> &'static UserMetrics {
    &METRICS
}

/// Registers the metrics now, so a scrape shows them before their first use.
pub fn register() {
    LazyLock::force(&METRICS);
}
