//! What the user service answers with: the public view of a user record
//! (the hash never leaves), its etag, and a user's status for the auth
//! service.

use crate::{error::Error, store::UserRecord};
use chrono::{DateTime, Utc};
use suite_proto::{time::to_timestamp, user::User};
use uuid::Uuid;

/// How much of a user a caller may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Everything but the hash: the user themself, operators, services.
    Full,
    /// Name and times only: other users in a listing.
    Public,
}

/// The view of `r` a caller with `visibility` gets.
pub fn view(r: &UserRecord, visibility: Visibility) -> User {
    let full = visibility == Visibility::Full;
    User {
        id: r.id.to_string(),
        username: r.username.as_str().to_owned(),
        email: if full {
            r.email.as_str().to_owned()
        } else {
            String::new()
        },
        display_name: r.display_name.as_str().to_owned(),
        roles: if full { r.roles.clone() } else { Vec::new() },
        create_time: Some(to_timestamp(r.created_at)),
        update_time: Some(to_timestamp(r.updated_at)),
        etag: if full { etag(r) } else { String::new() },
        email_verified: full && r.email_verified,
        pending_email: match (&r.pending_email, full) {
            (Some(e), true) => e.as_str().to_owned(),
            _ => String::new(),
        },
    }
}

/// One page of users.
#[derive(Debug)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next_page_token: String,
    pub total_size: i32,
}

/// What the auth service needs of a user to issue tokens: who, with which
/// roles, and since when their sessions are valid.
#[derive(Debug, Clone)]
pub struct UserStatus {
    pub id: Uuid,
    pub username: String,
    pub roles: Vec<String>,
    pub sessions_valid_after: Option<DateTime<Utc>>,
    pub email: String,
    pub email_verified: bool,
    /// The name mail greets the user by.
    pub name: String,
}

impl UserStatus {
    pub fn of(record: UserRecord) -> Self {
        Self {
            id: record.id,
            name: record.greeting_name().to_owned(),
            username: record.username.as_str().to_owned(),
            roles: record.roles,
            sessions_valid_after: record.sessions_valid_after,
            email: record.email.as_str().to_owned(),
            email_verified: record.email_verified,
        }
    }
}

/// Refused if `given` (empty: any) is not `record`'s current etag.
pub(super) fn check_etag(given: &str, record: &UserRecord) -> Result<(), Error> {
    if !given.is_empty() && given != etag(record) {
        return Err(Error::Aborted(
            "etag mismatch: the user changed since it was read",
        ));
    }
    Ok(())
}

fn etag(record: &UserRecord) -> String {
    record.version.to_string()
}
