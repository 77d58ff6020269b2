//! `suitectl admin create` and `suitectl users …`: the user service's
//! calls, one function per command.

use super::{
    connect::Conn,
    error::CtlError,
    output::{self, Format},
};
use std::io::{BufRead, IsTerminal, Write};
use suite_proto::user::{
    CreateUserRequest, DeleteUserRequest, GetUserRequest, ListUsersRequest, LookupUserRequest,
    UpdateUserRequest, User,
};

/// Shows one user.
pub fn print_user(format: Format, user: &User) -> String {
    match format {
        Format::Json => output::user_json(user).to_string(),
        Format::Text => output::user_text(user),
    }
}

fn user_of(user: Option<User>) -> Result<User, CtlError> {
    user.ok_or_else(|| CtlError::Failed("the service answered without the user".into()))
}

/// Creates a user with the admin role, the password read from stdin's first line.
pub async fn create_admin(
    conn: &mut Conn,
    username: String,
    email: String,
    display_name: String,
) -> Result<User, CtlError> {
    let password = read_password_stdin()?;
    let req = conn.req(CreateUserRequest {
        username,
        email,
        password,
        display_name,
        roles: vec!["admin".into()],
    })?;
    let reply = conn
        .user
        .create_user(req)
        .await
        .map_err(|s| CtlError::from_status("creating the admin", &s))?;
    user_of(reply.into_inner().user)
}

/// The first line of stdin, without its line ending.
fn read_password_stdin() -> Result<String, CtlError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CtlError::Usage(format!("reading the password from stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(CtlError::Usage(
            "--password-stdin: stdin gave no password (pipe it in, e.g. `printf %s \"$PW\" | suitectl …`)".into(),
        ));
    }
    Ok(password)
}

pub async fn get(conn: &mut Conn, id: String) -> Result<User, CtlError> {
    let req = conn.req(GetUserRequest { id })?;
    let reply = conn
        .user
        .get_user(req)
        .await
        .map_err(|s| CtlError::from_status("getting the user", &s))?;
    user_of(reply.into_inner().user)
}

pub async fn find(conn: &mut Conn, login: String) -> Result<User, CtlError> {
    let req = conn.req(LookupUserRequest { login })?;
    let reply = conn
        .user
        .lookup_user(req)
        .await
        .map_err(|s| CtlError::from_status("finding the user", &s))?;
    user_of(reply.into_inner().user)
}

/// Every user (at most `limit`), `page_size` per call.
pub async fn list(
    conn: &mut Conn,
    page_size: i32,
    limit: Option<usize>,
) -> Result<Vec<User>, CtlError> {
    let mut users = Vec::new();
    let mut page_token = String::new();
    loop {
        let req = conn.req(ListUsersRequest {
            page_size,
            page_token,
        })?;
        let page = conn
            .user
            .list_users(req)
            .await
            .map_err(|s| CtlError::from_status("listing users", &s))?
            .into_inner();
        users.extend(page.users);
        if let Some(limit) = limit
            && users.len() >= limit
        {
            users.truncate(limit);
            break;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    Ok(users)
}

pub async fn set_roles(conn: &mut Conn, id: String, roles: Vec<String>) -> Result<User, CtlError> {
    let req = conn.req(UpdateUserRequest {
        user: Some(User {
            id,
            roles,
            ..User::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["roles".into()],
        }),
    })?;
    let reply = conn
        .user
        .update_user(req)
        .await
        .map_err(|s| CtlError::from_status("setting the roles", &s))?;
    user_of(reply.into_inner().user)
}

/// Deletes a user, after a confirmation on the terminal unless `yes`.
pub async fn delete(conn: &mut Conn, id: String, yes: bool) -> Result<(), CtlError> {
    if !yes {
        let user = get(conn, id.clone()).await?;
        confirm(&format!(
            "Delete user {} ({}, {})? This ends their sessions. [y/N] ",
            user.username, user.email, user.id
        ))?;
    }
    let req = conn.req(DeleteUserRequest {
        id,
        etag: String::new(),
    })?;
    conn.user
        .delete_user(req)
        .await
        .map_err(|s| CtlError::from_status("deleting the user", &s))?;
    Ok(())
}

/// Asks `question` on the terminal; anything but yes is a refusal.
pub fn confirm(question: &str) -> Result<(), CtlError> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CtlError::Usage(
            "not going ahead without confirmation: pass --yes (stdin is not a terminal)".into(),
        ));
    }
    eprint!("{question}");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CtlError::Usage(format!("reading the answer: {e}")))?;
    if matches!(answer.trim().to_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CtlError::Failed("cancelled: nothing changed".into()))
    }
}
