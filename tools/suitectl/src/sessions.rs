//! `suitectl sessions …`: a user's sessions at the auth service.

use super::{connect::Conn, error::CtlError};
use suite_proto::auth::{ListSessionsRequest, RevokeSessionRequest, Session};

/// Every live session of `user_id`.
pub async fn list(conn: &mut Conn, user_id: String) -> Result<Vec<Session>, CtlError> {
    let mut sessions = Vec::new();
    let mut page_token = String::new();
    loop {
        let req = conn.req(ListSessionsRequest {
            page_size: 100,
            page_token,
            user_id: user_id.clone(),
        })?;
        let page = conn
            .auth
            .list_sessions(req)
            .await
            .map_err(|s| CtlError::from_status("listing sessions", &s))?
            .into_inner();
        sessions.extend(page.sessions);
        if page.next_page_token.is_empty() {
            return Ok(sessions);
        }
        page_token = page.next_page_token;
    }
}

pub async fn revoke(conn: &mut Conn, id: String) -> Result<(), CtlError> {
    let req = conn.req(RevokeSessionRequest { id })?;
    conn.auth
        .revoke_session(req)
        .await
        .map_err(|s| CtlError::from_status("revoking the session", &s))?;
    Ok(())
}
