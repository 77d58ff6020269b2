//! The user service's own metrics, registered with the process's registry
//! the first time they are used (or at start-up, by [`register`]).

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
};
use std::sync::{LazyLock, atomic::AtomicU64};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FactorLabels {
    pub purpose: &'static str,
    pub outcome: &'static str,
}

pub struct UserMetrics {
    pub password_hash_queued: Gauge,
    pub password_hash_running: Gauge,
    pub password_hash_buffer_bytes: Gauge,
    pub password_checks: Family<OutcomeLabels, Counter>,
    pub password_failure_floor_seconds: Gauge<f64, AtomicU64>,
    pub mail: Family<OutcomeLabels, Counter>,
    pub mail_outbox_depth: Gauge,
    pub mail_delivery_seconds: Histogram,
    pub password_reset_requests: Family<OutcomeLabels, Counter>,
    pub second_factor_checks: Family<FactorLabels, Counter>,
}

static METRICS: LazyLock<UserMetrics> = LazyLock::new(|| {
    let registry = suite_telemetry::metrics::metrics();
    UserMetrics {
        second_factor_checks: registry.registered(
            "suite_user_second_factor_checks",
            "Second-factor codes checked, by purpose (sign_in, totp_confirm) and outcome (valid, recovery_code, invalid, locked)",
            Family::default(),
        ),
        password_checks: registry.registered(
            "suite_user_password_checks",
            "Throttled password checks (logins and ChangePassword) by outcome (right, wrong, locked)",
            Family::default(),
        ),
        password_hash_queued: registry.registered(
            "suite_password_hash_queue_depth",
            "Password hashes waiting for a hashing thread",
            Gauge::default(),
        ),
        password_hash_running: registry.registered(
            "suite_password_hash_running",
            "Password hashes being computed",
            Gauge::default(),
        ),
        password_hash_buffer_bytes: registry.registered(
            "suite_password_hash_buffer_bytes",
            "Memory the password-hashing threads hold in argon2 block buffers (given back after an idle spell)",
            Gauge::default(),
        ),
        password_failure_floor_seconds: registry.registered(
            "suite_user_password_failure_floor_seconds",
            "The least time a failed password check takes (measured at the first failure: the slowest of a verification at the service's parameters and at the costliest an import accepts)",
            Gauge::default(),
        ),
        mail: registry.registered(
            "suite_user_mail",
            "Mail delivery attempts by outcome (sent, retried, failed)",
            Family::default(),
        ),
        mail_outbox_depth: registry.registered(
            "suite_user_mail_outbox_depth",
            "Mail in the outbox not yet delivered nor given up",
            Gauge::default(),
        ),
        mail_delivery_seconds: registry.registered(
            "suite_user_mail_delivery_seconds",
            "From the change that wrote a mail to the SMTP server's acceptance",
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0, 600.0]),
        ),
        password_reset_requests: registry.registered(
            "suite_user_password_reset_requests",
            "Password reset requests by outcome (mailed, unknown: no such account, limited: too many this hour)",
            Family::default(),
        ),
    }
});

pub fn metrics() -> &'static UserMetrics {
    &METRICS
}

/// Registers the metrics now, so a scrape shows them before their first use.
pub fn register() {
    LazyLock::force(&METRICS);
}

/// Counts a throttled password check by outcome.
pub fn count_password_check(outcome: &'static str) {
    metrics()
        .password_checks
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}

/// Counts a second factor's check by purpose and outcome.
pub fn count_second_factor(purpose: &'static str, outcome: &'static str) {
    metrics()
        .second_factor_checks
        .get_or_create(&FactorLabels { purpose, outcome })
        .inc();
}

/// Counts a mail delivery attempt by outcome.
pub fn count_mail(outcome: &'static str) {
    metrics()
        .mail
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}

/// Counts a password reset request by outcome.
pub fn count_reset_request(outcome: &'static str) {
    metrics()
        .password_reset_requests
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
}
