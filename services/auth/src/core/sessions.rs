//! A user's sessions as the user (or an operator) sees them: listed a page
//! at a time, one ended, and all of a user's ended when the user changes
//! (what the events consumer asks).

use super::{AuthCore, SessionPage, chrono_duration, revoked};
use crate::error::Error;
use chrono::{DateTime, Utc};
use suite_grpc::paging::Paging;
use suite_proto::{auth::RevocationReason, time::now};
use suite_tokens::Caller;
use uuid::Uuid;

impl AuthCore {
    /// The live sessions of `user_id` (empty: the caller's own); only
    /// admins and the operator's suitectl may name another user.
    pub async fn list_sessions(
        &self,
        caller: &Caller,
        page_size: i32,
        page_token: &str,
        user_id: &str,
    ) -> Result<SessionPage, Error> {
        let user_id = if user_id.is_empty() {
            user_of(caller)?
        } else {
            let named = Uuid::parse_str(user_id)
                .map_err(|_| Error::invalid("user_id", "must be a user id (a UUID)"))?;
            if caller.user_id() != Some(named) && !caller.is_operator() {
                return Err(Error::PermissionDenied(
                    "only admins may list another user's sessions",
                ));
            }
            named
        };
        let page = SESSIONS_PAGING.page(page_size, page_token)?;
        let now = now();
        let idle_cutoff = now - chrono_duration(self.settings.idle_timeout);
        let mut rows = self
            .store
            .list_sessions(user_id, page.after, page.fetch(), now, idle_cutoff)
            .await?;
        let next_page_token = SESSIONS_PAGING.finish(page, &mut rows, |s| s.id);
        Ok(SessionPage {
            sessions: rows,
            current: caller.session(),
            next_page_token,
        })
    }

    /// Ends one session: the caller's own, or anyone's for an operator. Another
    /// user's session is NotFound, exactly as a session that does not exist.
    pub async fn revoke_session(&self, caller: &Caller, id: &str) -> Result<(), Error> {
        let id = Uuid::parse_str(id)
            .map_err(|_| Error::invalid("id", "must be a session id (a UUID)"))?;
        let not_found = Error::NotFound("session not found");
        let session = self.store.get_session(id).await?.ok_or(not_found)?;
        let owner = caller.user_id() == Some(session.user_id);
        // An admin or the operator's suitectl may end anyone's.
        if !(owner || caller.is_operator()) {
            return Err(Error::NotFound("session not found"));
        }
        let reason = if owner {
            RevocationReason::ByUser
        } else {
            RevocationReason::ByAdmin
        };
        if self
            .revoke(
                &session,
                now(),
                revoked(session.id, session.user_id, reason),
            )
            .await?
        {
            tracing::info!(session.id = %id, by_admin = !owner, "session revoked");
        }
        Ok(())
    }

    /// Ends `user_id`'s sessions begun before `before`, for `reason` (the
    /// user was deleted or changed): what the events consumer does.
    /// Idempotent: sessions already revoked are left alone.
    pub async fn end_user_sessions(
        &self,
        user_id: Uuid,
        before: DateTime<Utc>,
        reason: RevocationReason,
    ) -> Result<usize, Error> {
        let event_for = |id: Uuid| revoked(id, user_id, reason);
        let ended = self
            .store
            .revoke_user_sessions(user_id, before, now(), &event_for)
            .await?;
        if !ended.is_empty() {
            self.events.wake();
            tracing::info!(user.id = %user_id, sessions = ended.len(), ?reason, "sessions ended");
        }
        Ok(ended.len())
    }
}

fn user_of(caller: &Caller) -> Result<Uuid, Error> {
    caller.user_id().ok_or(Error::PermissionDenied(
        "sessions belong to users; this token names no user",
    ))
}

/// `ListSessions` pages (`s1:` marks its tokens).
const SESSIONS_PAGING: Paging = Paging::new("s1:");
