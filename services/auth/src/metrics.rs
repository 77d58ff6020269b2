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

/// A token-endpoint request: its grant type and what came of it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    pub grant: &'static str,
    /// `issued`, or the OAuth error code.
    pub outcome: &'static str,
}

pub struct AuthMetrics {
    pub logins: Family<OutcomeLabels, Counter>,
    pub refresh_token_reuse: Counter,
    pub oauth_tokens: Family<GrantLabels, Counter>,
    pub authorization_code_reuse: Counter,
    pub backchannel_logouts: Family<OutcomeLabels, Counter>,
    pub personal_access_tokens: Family<OutcomeLabels, Counter>,
    pub pat_exchanges: Family<OutcomeLabels, Counter>,
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
        oauth_tokens: registry.registered(
            "suite_auth_oauth_token_requests",
            "Token-endpoint requests by grant type and outcome (issued, or the OAuth error)",
            Family::default(),
        ),
        authorization_code_reuse: registry.registered(
            "suite_auth_authorization_code_reuse",
            "Authorization codes presented again (each revokes the tokens of their first exchange)",
            Counter::default(),
        ),
        backchannel_logouts: registry.registered(
            "suite_auth_backchannel_logouts",
            "Back-channel logout attempts by outcome (delivered, retrying, given_up, no_receiver)",
            Family::default(),
        ),
        personal_access_tokens: registry.registered(
            "suite_auth_personal_access_tokens",
            "Personal access tokens created and revoked (outcome: created, revoked)",
            Family::default(),
        ),
        pat_exchanges: registry.registered(
            "suite_auth_personal_access_token_exchanges",
            "Personal access tokens exchanged by the verifiers, by outcome (valid, unknown, \
             revoked, expired, malformed, error): one per token every few minutes per verifier",
            Family::default(),
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
