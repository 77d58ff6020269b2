//! Events as the event-stream RPCs serve them: the envelope's attributes
//! and the decoded message (`suite.user.v1.Event`).

use crate::{Bus, Error, Event, Filter, Item, Start};
use prost::Name;
use std::pin::Pin;
use suite_proto::{
    auth,
    user::{self, event::Data},
};
use tokio_stream::wrappers::ReceiverStream;

/// The served form of `event`; `None` for a type this build does not know.
pub fn to_proto(event: &Event) -> Option<user::Event> {
    let data = decode(event)?;
    Some(user::Event {
        id: event.id.to_string(),
        r#type: event.event_type.clone(),
        source: event.source.clone(),
        subject: event.subject.clone(),
        time: Some(prost_types::Timestamp {
            seconds: event.time.timestamp(),
            nanos: i32::try_from(event.time.timestamp_subsec_nanos()).unwrap_or(0),
        }),
        data: Some(data),
    })
}

fn decode(e: &Event) -> Option<Data> {
    let t = e.event_type.as_str();
    macro_rules! by_type {
        ($($message:ty => $variant:ident),* $(,)?) => {
            $(if t == <$message>::full_name() {
                return e.decode::<$message>().map(Data::$variant);
            })*
        };
    }
    by_type!(
        user::UserCreated => UserCreated,
        user::UserUpdated => UserUpdated,
        user::UserDeleted => UserDeleted,
        user::PasswordChanged => PasswordChanged,
        user::RolesChanged => RolesChanged,
        user::AccountLocked => AccountLocked,
        user::EmailVerificationRequested => EmailVerificationRequested,
        user::EmailVerified => EmailVerified,
        user::EmailChangeRequested => EmailChangeRequested,
        user::EmailChangeReverted => EmailChangeReverted,
        user::PasswordResetRequested => PasswordResetRequested,
        user::PasswordResetCompleted => PasswordResetCompleted,
        user::SecondFactorAdded => SecondFactorAdded,
        user::SecondFactorRemoved => SecondFactorRemoved,
        user::RecoveryCodesGenerated => RecoveryCodesGenerated,
        user::RecoveryCodeUsed => RecoveryCodeUsed,
        auth::SessionStarted => SessionStarted,
        auth::SessionReuseDetected => SessionReuseDetected,
        auth::SessionRevoked => SessionRevoked,
        auth::SessionEnded => SessionEnded,
        auth::PersonalAccessTokenCreated => PersonalAccessTokenCreated,
        auth::PersonalAccessTokenRevoked => PersonalAccessTokenRevoked,
    );
    None
}

/// Every event type the streams serve.
pub fn types() -> Vec<String> {
    vec![
        user::UserCreated::full_name(),
        user::UserUpdated::full_name(),
        user::UserDeleted::full_name(),
        user::PasswordChanged::full_name(),
        user::RolesChanged::full_name(),
        user::AccountLocked::full_name(),
        user::EmailVerificationRequested::full_name(),
        user::EmailVerified::full_name(),
        user::EmailChangeRequested::full_name(),
        user::EmailChangeReverted::full_name(),
        user::PasswordResetRequested::full_name(),
        user::PasswordResetCompleted::full_name(),
        user::SecondFactorAdded::full_name(),
        user::SecondFactorRemoved::full_name(),
        user::RecoveryCodesGenerated::full_name(),
        user::RecoveryCodeUsed::full_name(),
        auth::SessionStarted::full_name(),
        auth::SessionReuseDetected::full_name(),
        auth::SessionRevoked::full_name(),
        auth::SessionEnded::full_name(),
        auth::PersonalAccessTokenCreated::full_name(),
        auth::PersonalAccessTokenRevoked::full_name(),
    ]
}

/// A served event stream (of events, or of the RPC's messages holding them).
pub type Feed<T> = Pin<Box<dyn futures_util::Stream<Item = Result<T, tonic::Status>> + Send>>;

/// `feed`'s events, each wrapped in the RPC's message.
pub fn wrap<T: Send + 'static>(
    feed: Feed<user::Event>,
    into: impl Fn(user::Event) -> T + Send + 'static,
) -> Feed<T> {
    use futures_util::StreamExt;
    Box::pin(feed.map(move |r| r.map(&into)))
}

/// How many events may wait for a slow client before the feed waits too.
const FEED_BUFFER: usize = 256;

/// The events `filter` selects from `start`, served until `ends` completes
/// (the caller's token expires or is revoked: its status is the last item)
/// or the client goes.
pub async fn serve(
    bus: &Bus,
    filter: Filter,
    start: Start,
    ends: impl Future<Output = tonic::Status> + Send + 'static,
) -> Result<Feed<user::Event>, Error> {
    let mut sub = bus.subscribe(filter, start).await?;
    let (tx, rx) = tokio::sync::mpsc::channel(FEED_BUFFER);
    tokio::spawn(async move {
        let mut ends = std::pin::pin!(ends);
        loop {
            let item = tokio::select! {
                // First: a busy stream must not outlive its token.
                biased;
                status = &mut ends => {
                    // Not waiting on a slow client: the end is sent if there
                    // is room, and the stream closes either way.
                    let _ = tx.try_send(Err(status));
                    return;
                }
                () = tx.closed() => return,
                item = sub.next() => item,
            };
            let sent = match item {
                Some(Ok(Item::Event { event, .. })) => match to_proto(&event) {
                    Some(e) => tx.send(Ok(e)).await,
                    None => Ok(()),
                },
                Some(Ok(Item::CaughtUp)) => Ok(()),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "an event stream broke off");
                    let _ = tx
                        .send(Err(tonic::Status::unavailable(
                            "the event stream broke off; resume with the last event id",
                        )))
                        .await;
                    return;
                }
                None => return,
            };
            if sent.is_err() {
                return;
            }
        }
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_type_decodes_into_the_event_message() {
        let user = uuid::Uuid::now_v7();
        for t in types() {
            let mut event = Event::new(&user::UserDeleted::default(), user);
            event.event_type = t.clone();
            // Every message's defaults encode to no bytes: any type decodes.
            event.data = bytes::Bytes::new();
            let served = to_proto(&event);
            assert!(served.is_some(), "{t} is served but not decoded");
            assert_eq!(served.map(|e| e.r#type), Some(t));
        }
    }

    #[test]
    fn second_factor_events_are_served() {
        let user = uuid::Uuid::now_v7();
        let event = Event::new(
            &user::RecoveryCodeUsed {
                user_id: user.to_string(),
                remaining: 7,
            },
            user,
        );
        assert!(types().contains(&event.event_type));
        match to_proto(&event).and_then(|e| e.data) {
            Some(Data::RecoveryCodeUsed(m)) => assert_eq!(m.remaining, 7),
            other => panic!("not decoded: {other:?}"),
        }
        for t in [
            user::SecondFactorAdded::full_name(),
            user::SecondFactorRemoved::full_name(),
            user::RecoveryCodesGenerated::full_name(),
        ] {
            assert!(types().contains(&t), "{t}");
        }
    }
}
