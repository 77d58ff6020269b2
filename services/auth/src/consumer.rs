//! The auth service acting on the user service's events: a user deleted, a
//! password changed or roles changed ends the user's sessions (refresh and
//! browser sessions; a deletion, the user's consents too) and revokes the
//! user's personal access tokens at once
//! (rather than at their next refresh), cut off as
//! [`suite_events::revocations::user_cutoff`] says. A durable consumer: each event is
//! acknowledged after its effect, and the effect is idempotent, so an event
//! delivered again (after a crash, or by another replica) changes nothing.

use crate::{core::AuthCore, oauth::OAuthCore, pat::TokenCore};
use chrono::Utc;
use prost::Name;
use std::sync::Arc;
use suite_db::Migrated;
use suite_events::{
    Bus, Filter, Stream,
    resubscribe::Backoff,
    revocations::{UserCutoff, user_cutoff},
};
use suite_proto::user;
use tokio_stream::StreamExt;

/// The durable consumer's name: one per deployment, shared by the replicas
/// (JetStream hands each event to one of them).
pub const CONSUMER: &str = "suite-auth-sessions";

/// Runs the consumer until the task is dropped, reconnecting as needed.
/// It starts once the migrations have made the sessions' tables: an event
/// waiting in the stream would otherwise meet an empty database, fail,
/// and be delivered again until they exist.
pub async fn run(
    bus: Bus,
    core: Arc<AuthCore>,
    provider: Arc<OAuthCore>,
    tokens: Arc<TokenCore>,
    mut migrated: Migrated,
) {
    migrated.wait().await;
    let filter = Filter {
        streams: vec![Stream::User],
        types: vec![
            user::UserDeleted::full_name(),
            user::PasswordChanged::full_name(),
            user::RolesChanged::full_name(),
            user::EmailChangeReverted::full_name(),
        ],
        ..Filter::default()
    };
    // Not `resubscribe::follow`: a durable consumer resumes where its
    // acknowledgements left off, so only the back-off is shared.
    let mut backoff = Backoff::default();
    loop {
        match bus.durable(CONSUMER, Stream::User, filter.clone()).await {
            Ok(mut deliveries) => {
                while let Some(delivery) = deliveries.next().await {
                    let delivery = match delivery {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::warn!(error = %e, "user events broke off; resubscribing");
                            break;
                        }
                    };
                    backoff.reset();
                    // The verifiers' revocations follow the same rule.
                    let cutoff = delivery
                        .event
                        .as_ref()
                        .and_then(|e| user_cutoff(e, Utc::now()));
                    let Some(UserCutoff {
                        user,
                        before,
                        reason,
                    }) = cutoff
                    else {
                        // Not ours to act on: done with it.
                        ack(delivery).await;
                        continue;
                    };
                    let ended = match core.end_user_sessions(user, before, reason).await {
                        // The provider's browser sessions (and, for a
                        // deletion, consents) go too.
                        Ok(_) => match provider.forget_user(user, before, reason).await {
                            // And the tokens made before the change.
                            Ok(_) => tokens.revoke_user(user, before, reason).await.map(|_| ()),
                            Err(e) => Err(e),
                        },
                        Err(e) => Err(e),
                    };
                    match ended {
                        Ok(_) => ack(delivery).await,
                        // Not acknowledged: JetStream delivers it again.
                        Err(e) => {
                            tracing::warn!(error = %e, user.id = %user, "ending sessions failed; will retry")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot consume user events; retrying"),
        }
        backoff.wait().await;
    }
}

async fn ack(delivery: suite_events::Delivery) {
    if let Err(e) = delivery.ack().await {
        // Delivered again later; the effect is idempotent.
        tracing::debug!(error = %e, "acknowledging an event failed");
    }
}
