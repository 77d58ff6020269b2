//! Feeds a verifier's [`Revocations`] from the events: logout, revocation and
//! reuse detection end a session's tokens; deletion, a password change and
//! a roles change end the tokens a user was given before. It reads one
//! token lifetime back at start and marks the set caught up after that past.

use crate::{Bus, Event, Filter, Item, Start};
use prost::Name;
use suite_proto::{auth, user};
use suite_tokens::{Revocations, revocations::Millis};
use uuid::Uuid;

/// The event types that revoke something.
pub fn types() -> Vec<String> {
    vec![
        auth::SessionEnded::full_name(),
        auth::SessionRevoked::full_name(),
        auth::SessionReuseDetected::full_name(),
        user::UserDeleted::full_name(),
        user::PasswordChanged::full_name(),
        user::RolesChanged::full_name(),
    ]
}

/// Applies one event to the set; false if it revokes nothing.
pub fn apply(set: &Revocations, event: &Event) -> bool {
    let at: Millis = event.time.timestamp_millis();
    let session = |id: &str| Uuid::parse_str(id).ok();
    if let Some(e) = event.decode::<auth::SessionEnded>() {
        session(&e.session_id)
            .map(|s| set.revoke_session(s, at))
            .is_some()
    } else if let Some(e) = event.decode::<auth::SessionRevoked>() {
        session(&e.session_id)
            .map(|s| set.revoke_session(s, at))
            .is_some()
    } else if let Some(e) = event.decode::<auth::SessionReuseDetected>() {
        session(&e.session_id)
            .map(|s| set.revoke_session(s, at))
            .is_some()
    } else if event.decode::<user::UserDeleted>().is_some()
        || event.decode::<user::RolesChanged>().is_some()
    {
        revoke_subject(set, event, at)
    } else if let Some(e) = event.decode::<user::PasswordChanged>() {
        let cutoff = e
            .sessions_valid_after
            .map(|t| t.seconds.saturating_mul(1000) + i64::from(t.nanos / 1_000_000))
            .unwrap_or(at);
        revoke_subject(set, event, cutoff)
    } else {
        false
    }
}

fn revoke_subject(set: &Revocations, event: &Event, before: Millis) -> bool {
    Uuid::parse_str(&event.subject)
        .map(|user| set.revoke_user_before(user, before))
        .is_ok()
}

/// Keeps `set` fed from `bus` for as long as the task runs, starting over
/// (from a little before the last event it saw) whenever the subscription
/// breaks: entries are idempotent, so reading some twice is harmless.
pub fn follow(bus: Bus, set: Revocations) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let lookback = chrono::Duration::from_std(set.lookback()).unwrap_or_default();
        let filter = Filter {
            types: types(),
            ..Filter::default()
        };
        let start = Start::Since(chrono::Utc::now() - lookback);
        crate::resubscribe::follow(&bus, filter, start, "revocation events", |item| {
            match item {
                Item::Event { event, .. } => {
                    apply(&set, &event);
                }
                Item::CaughtUp => {
                    if !set.is_caught_up() {
                        tracing::info!("revocations caught up with the events");
                    }
                    set.mark_caught_up();
                }
            }
            std::future::ready(())
        })
        .await;
    })
}

/// A server's readiness that waits also for its revocations to catch up:
/// until then it could let a revoked token in.
pub struct Gate {
    pub inner: std::sync::Arc<dyn suite_runtime::readiness::Readiness>,
    pub revocations: Revocations,
}

impl suite_runtime::readiness::Readiness for Gate {
    fn migrate(&self) -> suite_runtime::readiness::Check<'_> {
        self.inner.migrate()
    }

    fn ping(&self) -> suite_runtime::readiness::Check<'_> {
        Box::pin(async move {
            if !self.revocations.is_caught_up() {
                return Err("reading the recent revocations from the events".to_owned());
            }
            self.inner.ping().await
        })
    }
}
