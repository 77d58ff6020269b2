//! Feeds a verifier's [`Revocations`] from the events: logout, revocation and
//! reuse detection end a session's tokens, a personal access token's
//! revocation the tokens exchanged for it; deletion, a password change, a
//! roles change and an undone email change end the tokens a user was given before ([`user_cutoff`],
//! the rule the auth service's sessions follow too). It reads one
//! token lifetime back at start and marks the set caught up after that past.

use crate::{Bus, Event, Filter, Item, Start};
use chrono::{DateTime, Utc};
use prost::Name;
use suite_proto::{auth, time::from_timestamp, user};
use suite_tokens::{Revocations, revocations::Millis};
use uuid::Uuid;

/// The event types that revoke something.
pub fn types() -> Vec<String> {
    vec![
        auth::SessionEnded::full_name(),
        auth::SessionRevoked::full_name(),
        auth::SessionReuseDetected::full_name(),
        auth::PersonalAccessTokenRevoked::full_name(),
        user::UserDeleted::full_name(),
        user::PasswordChanged::full_name(),
        user::RolesChanged::full_name(),
        user::EmailChangeReverted::full_name(),
    ]
}

/// What a user event means for the user's sessions and tokens: every one
/// begun or issued before `before` ends, for `reason`. The one rule for the
/// auth service's sessions (its events consumer) and every verifier's
/// revocations ([`apply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCutoff {
    pub user: Uuid,
    pub before: DateTime<Utc>,
    pub reason: auth::RevocationReason,
}

/// The cut-off `event` sets, applied at `now`; `None` if it is not a user
/// event that ends sessions (or names no user).
///
/// - A password change: the instant it records (`sessions_valid_after`),
///   else the event's: sessions begun after the change live on.
/// - A roles change: the event's instant, likewise.
/// - A deletion: `now`, when the event is applied, not the event's instant.
///   A deleted user has no valid session or token of any age, and a login
///   whose credential check read the user just before the deletion
///   committed dates its session and token after the event; `now` (later
///   than that login, which no later login can follow) ends those too.
pub fn user_cutoff(event: &Event, now: DateTime<Utc>) -> Option<UserCutoff> {
    let (before, reason) = if event.decode::<user::UserDeleted>().is_some() {
        (now, auth::RevocationReason::UserDeleted)
    } else if let Some(changed) = event.decode::<user::PasswordChanged>() {
        let at = changed
            .sessions_valid_after
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or(event.time);
        (at, auth::RevocationReason::PasswordChanged)
    } else if event.decode::<user::RolesChanged>().is_some() {
        (event.time, auth::RevocationReason::RolesChanged)
    } else if let Some(reverted) = event.decode::<user::EmailChangeReverted>() {
        let at = reverted
            .sessions_valid_after
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or(event.time);
        (at, auth::RevocationReason::EmailChangeReverted)
    } else {
        return None;
    };
    Some(UserCutoff {
        user: Uuid::parse_str(&event.subject).ok()?,
        before,
        reason,
    })
}

/// The session `event` ends (a logout, a revocation, a reuse detected; a
/// personal access token's revocation, whose exchanged tokens carry its id
/// as their session), if it is such an event.
fn ended_session(event: &Event) -> Option<Option<Uuid>> {
    let id = if let Some(e) = event.decode::<auth::SessionEnded>() {
        e.session_id
    } else if let Some(e) = event.decode::<auth::SessionRevoked>() {
        e.session_id
    } else if let Some(e) = event.decode::<auth::SessionReuseDetected>() {
        e.session_id
    } else if let Some(e) = event.decode::<auth::PersonalAccessTokenRevoked>() {
        e.token_id
    } else {
        return None;
    };
    Some(Uuid::parse_str(&id).ok())
}

/// Applies one event to the set; false if it revokes nothing.
pub fn apply(set: &Revocations, event: &Event) -> bool {
    if let Some(session) = ended_session(event) {
        let at: Millis = event.time.timestamp_millis();
        return session.map(|s| set.revoke_session(s, at)).is_some();
    }
    user_cutoff(event, Utc::now())
        .map(|c| set.revoke_user_before(c.user, c.before.timestamp_millis()))
        .is_some()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    /// A deletion ends everything up to when it is applied, even a session
    /// or token dated after the event (a login that read the user just
    /// before the deletion committed); changes cut off at their own instant.
    #[test]
    fn a_deletion_cuts_off_when_applied_and_a_change_when_it_happened() {
        let user = Uuid::now_v7();
        let mut deleted = Event::new(
            &user::UserDeleted {
                user_id: user.to_string(),
            },
            user,
        );
        deleted.time = at(1_000);
        let applied = at(1_005);
        assert_eq!(
            user_cutoff(&deleted, applied),
            Some(UserCutoff {
                user,
                before: applied,
                reason: auth::RevocationReason::UserDeleted,
            })
        );

        let mut roles = Event::new(
            &user::RolesChanged {
                user_id: user.to_string(),
                ..Default::default()
            },
            user,
        );
        roles.time = at(1_000);
        assert_eq!(
            user_cutoff(&roles, applied).map(|c| c.before),
            Some(at(1_000))
        );

        let mut password = Event::new(
            &user::PasswordChanged {
                user_id: user.to_string(),
                sessions_valid_after: Some(suite_proto::time::to_timestamp(at(990))),
            },
            user,
        );
        password.time = at(1_000);
        assert_eq!(
            user_cutoff(&password, applied),
            Some(UserCutoff {
                user,
                before: at(990),
                reason: auth::RevocationReason::PasswordChanged,
            })
        );
        password.data = prost::Message::encode_to_vec(&user::PasswordChanged {
            user_id: user.to_string(),
            sessions_valid_after: None,
        })
        .into();
        assert_eq!(
            user_cutoff(&password, applied).map(|c| c.before),
            Some(at(1_000)),
            "without its own instant, the event's"
        );

        let reverted = Event::new(
            &user::EmailChangeReverted {
                user_id: user.to_string(),
                sessions_valid_after: Some(suite_proto::time::to_timestamp(at(995))),
            },
            user,
        );
        assert_eq!(
            user_cutoff(&reverted, applied),
            Some(UserCutoff {
                user,
                before: at(995),
                reason: auth::RevocationReason::EmailChangeReverted,
            }),
            "an undone change of address signs everyone out"
        );
    }

    #[test]
    fn other_events_and_unnamed_users_cut_nothing_off() {
        let user = Uuid::now_v7();
        let created = Event::new(&user::UserCreated::default(), user);
        assert_eq!(user_cutoff(&created, Utc::now()), None);
        let mut nobody = Event::new(&user::UserDeleted::default(), user);
        nobody.subject = "not a uuid".into();
        assert_eq!(user_cutoff(&nobody, Utc::now()), None);
    }

    #[test]
    fn a_deletion_applied_to_the_set_refuses_tokens_issued_after_the_event() {
        let set = Revocations::new(Duration::from_secs(900));
        let user = Uuid::now_v7();
        let mut deleted = Event::new(&user::UserDeleted::default(), user);
        deleted.time = Utc::now() - chrono::Duration::seconds(5);
        assert!(apply(&set, &deleted));
        let issued_after_event = (deleted.time + chrono::Duration::seconds(2)).timestamp_millis();
        assert!(set.refuses(user, None, issued_after_event));
    }
}
