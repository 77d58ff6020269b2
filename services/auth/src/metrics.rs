//! The auth service's own metrics, registered with the process's registry
//! the first time they are used (or at start-up, by [`register`]).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
};
use std::sync::LazyLock;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

pub struct AuthMetrics {
    pub logins: Family<OutcomeLabels, Counter>,
    pub refresh_token_reuse: Counter,
}

static METRICS: LazyLock<AuthMetrics> = LazyLock::new(|| {
    let registry = suite_telemetry::metrics::metrics();
    AuthMetrics {
        logins: registry.registered(
            "suite_auth_logins",
            "Login attempts by outcome (success, bad_credentials, locked_out)",
            Family::default(),
        ),
        refresh_token_reuse: registry.registered(
            "suite_auth_refresh_token_reuse",
            "Refresh tokens presented again after rotation (each revokes its session)",
            Counter::default(),
        ),
    }
});

pub fn metrics() -> &'static AuthMetrics {
    &METRICS
}

/// Registers the metrics now, so a scrape shows them before their first use.
pub fn register() {
    LazyLock::force(&METRICS);
}
