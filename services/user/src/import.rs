//! Importing users from another system with their password hashes: each
//! item checked on its own (a bad one fails alone, naming its field), the
//! valid ones inserted together by the store.

use crate::{
    domain::{DisplayName, Email, Username},
    imported_hash,
    store::UserRecord,
};
use chrono::{DateTime, SubsecRound, Utc};
use suite_proto::user::{ImportResult, ImportedUser, import_result::Outcome};
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
        Some(t) => u32::try_from(t.nanos)
            .ok()
            .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
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
            })
        }
        _ => Err(reasons.join("; ")),
    }
}

pub fn created(id: Uuid) -> ImportResult {
    ImportResult {
        outcome: Outcome::Created.into(),
        user_id: id.to_string(),
        reason: String::new(),
    }
}

pub fn skipped() -> ImportResult {
    ImportResult {
        outcome: Outcome::Skipped.into(),
        user_id: String::new(),
        reason: "a live user already has this username or email".into(),
    }
}

pub fn failed(reason: String) -> ImportResult {
    ImportResult {
        outcome: Outcome::Failed.into(),
        user_id: String::new(),
        reason,
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
