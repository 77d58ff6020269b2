//! `suitectl users mfa …`: a user's second factors at the user service,
//! listed, or all removed for a user who lost them.

use super::{connect::Conn, error::CtlError, users};
use suite_proto::user::{ListFactorsRequest, ListFactorsResponse, ResetFactorsRequest, User};

/// Whether `user` names a user by id (a UUID, or `me`: the logged-in admin)
/// rather than by login.
pub fn is_id(user: &str) -> bool {
    user == "me" || uuid::Uuid::parse_str(user).is_ok()
}

/// The user `user` names: an id, a username or an email.
pub async fn resolve(conn: &mut Conn, user: String) -> Result<User, CtlError> {
    if is_id(&user) {
        users::get(conn, user).await
    } else {
        users::find(conn, user).await
    }
}

/// The user's second factors and how many recovery codes they have left.
pub async fn list(conn: &mut Conn, user_id: String) -> Result<ListFactorsResponse, CtlError> {
    let req = conn.req(ListFactorsRequest { user_id })?;
    Ok(conn
        .user
        .list_factors(req)
        .await
        .map_err(|s| CtlError::from_status("listing the second factors", &s))?
        .into_inner())
}

/// Removes every second factor and recovery code of `user` (their sessions
/// stay), after a confirmation on the terminal unless `yes`; how many
/// factors were removed.
pub async fn reset(conn: &mut Conn, user: &User, yes: bool) -> Result<i32, CtlError> {
    if !yes {
        users::confirm(&format!(
            "Remove every second factor and recovery code of {} ({}, {})? Their sessions stay signed in. [y/N] ",
            user.username, user.email, user.id
        ))?;
    }
    let req = conn.req(ResetFactorsRequest {
        user_id: user.id.clone(),
    })?;
    Ok(conn
        .user
        .reset_factors(req)
        .await
        .map_err(|s| CtlError::from_status("resetting the second factors", &s))?
        .into_inner()
        .removed)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_uuid_or_me_is_an_id_and_anything_else_a_login() {
        assert!(super::is_id("0190f5c4-0000-7000-8000-000000000001"));
        assert!(super::is_id("me"));
        for login in ["ada", "ada@example.com", "0190f5c4", "ME"] {
            assert!(!super::is_id(login), "{login}");
        }
    }
}
