//! Importing users from another system with their password hashes: each
//! item checked on its own (a bad one fails alone, naming its field), the
//! valid ones inserted together by the store.

use super::{
    UserCore,
    access::operators_only,
    view::{Visibility, view},
};
use crate::{
    domain::{DisplayName, Email, Username},
    error::Error,
    imported_hash,
    store::UserRecord,
};
use chrono::{DateTime, SubsecRound, Utc};
use suite_events::Event;
use suite_proto::{
    time::{from_timestamp, now},
    user::{ImportedUser, UserCreated},
};
use suite_tokens::Caller;
use uuid::Uuid;

/// The most users one ImportUsers call may carry.
pub const MAX_BATCH: usize = 1000;

/// The record an imported user becomes (role `user`), or why it cannot be
/// imported (`field: reason`, every bad field).
pub fn parse(u: &ImportedUser, now: DateTime<Utc>) -> Result<UserRecord, String> {
    let mut reasons = Vec::new();
    let mut note = |field: &str, r: Result<(), String>| {
        if let Err(e) = r {
            reasons.push(format!("{field}: {e}"));
        }
    };
    let username = Username::parse(&u.username);
    note(
        "username",
        username.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let email = Email::parse(&u.email);
    note("email", email.as_ref().map(|_| ()).map_err(Clone::clone));
    let display_name = DisplayName::parse(&u.display_name);
    note(
        "display_name",
        display_name.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    note("password_hash", imported_hash::validate(&u.password_hash));
    let created_at = match &u.create_time {
        None => Ok(now),
        Some(t) => from_timestamp(t)
            .filter(|t| *t <= now)
            .map(|t| t.trunc_subsecs(6))
            .ok_or_else(|| "must be a valid instant, not in the future".to_owned()),
    };
    note(
        "create_time",
        created_at.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    match (username, email, display_name, created_at) {
        (Ok(username), Ok(email), Ok(display_name), Ok(created_at)) if reasons.is_empty() => {
            Ok(UserRecord {
                id: Uuid::now_v7(),
                username,
                email,
                display_name,
                roles: vec![suite_tokens::roles::USER.to_owned()],
                password_hash: u.password_hash.clone(),
                created_at,
                updated_at: now,
                version: 1,
                sessions_valid_after: None,
                email_verified: false,
                pending_email: None,
            })
        }
        _ => Err(reasons.join("; ")),
    }
}

/// What became of one imported user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    Created(Uuid),
    /// A live user already has its username or email.
    Skipped,
    /// Invalid: every bad field, as `field: reason`.
    Failed(String),
}

impl UserCore {
    /// Imports users with the hashes they had elsewhere (nothing is hashed
    /// here): each valid item created with its event unless a live user has
    /// its username or email; each answered on its own, in order.
    pub async fn import(
        &self,
        caller: &Caller,
        users: &[ImportedUser],
    ) -> Result<Vec<ImportOutcome>, Error> {
        operators_only(
            caller,
            "only admins and the operator's suitectl may import users",
        )?;
        if users.len() > MAX_BATCH {
            return Err(Error::invalid(
                "users",
                format!("at most {MAX_BATCH} users per call"),
            ));
        }
        let now = now();
        let mut results = Vec::with_capacity(users.len());
        let mut records = Vec::new();
        // For each valid record, its place in `results`.
        let mut places = Vec::new();
        for (i, u) in users.iter().enumerate() {
            match parse(u, now) {
                Ok(record) => {
                    results.push(ImportOutcome::Skipped);
                    records.push(record);
                    places.push(i);
                }
                Err(reason) => results.push(ImportOutcome::Failed(reason)),
            }
        }
        if records.is_empty() {
            return Ok(results);
        }
        let events: Vec<Event> = records
            .iter()
            .map(|r| {
                Event::new(
                    &UserCreated {
                        user: Some(view(r, Visibility::Full)),
                    },
                    r.id,
                )
            })
            .collect();
        let created: std::collections::HashSet<Uuid> = self
            .store
            .import(&records, &self.recorded(events))
            .await?
            .into_iter()
            .collect();
        for (record, place) in records.iter().zip(places) {
            if created.contains(&record.id)
                && let Some(slot) = results.get_mut(place)
            {
                *slot = ImportOutcome::Created(record.id);
            }
        }
        if !created.is_empty() {
            self.events.wake();
        }
        tracing::info!(
            created = created.len(),
            requested = users.len(),
            "users imported"
        );
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named_and_good_items_become_user_records() {
        let now = Utc::now();
        let bad = ImportedUser {
            username: "x".into(),
            email: "nope".into(),
            display_name: String::new(),
            password_hash: "plain".into(),
            create_time: Some(prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0,
            }),
        };
        let reason = parse(&bad, now).expect_err("invalid");
        for field in ["username", "email", "password_hash", "create_time"] {
            assert!(reason.contains(field), "{reason}");
        }
        let good = ImportedUser {
            username: "Grace".into(),
            email: "grace@example.com".into(),
            display_name: "Grace H".into(),
            password_hash: bcrypt::hash("some password", imported_hash::MIN_BCRYPT_COST)
                .expect("hash"),
            create_time: Some(prost_types::Timestamp {
                seconds: 1_600_000_000,
                nanos: 0,
            }),
        };
        let record = parse(&good, now).expect("valid");
        assert_eq!(record.username.as_str(), "grace");
        assert_eq!(record.roles, vec!["user".to_owned()]);
        assert_eq!(record.created_at.timestamp(), 1_600_000_000);
    }
}
