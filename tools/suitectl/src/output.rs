//! How results are shown: aligned text for people, JSON for scripts.

use serde_json::{Value, json};
use suite_proto::{auth::Session, user::User};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Tables and sentences.
    Text,
    /// One JSON document on stdout.
    Json,
}

/// A table: a header row and rows, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(header.iter().map(|h| (*h).to_owned()).collect())];
    out.extend(rows.iter().map(|r| line(r.clone())));
    out.join("\n")
}

/// RFC 3339, or empty.
pub fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "display_name": u.display_name,
        "roles": u.roles,
        "create_time": time(u.create_time.as_ref()),
        "update_time": time(u.update_time.as_ref()),
        "etag": u.etag,
    })
}

pub const USER_HEADER: [&str; 5] = ["ID", "USERNAME", "EMAIL", "ROLES", "CREATED"];

pub fn user_row(u: &User) -> Vec<String> {
    vec![
        u.id.clone(),
        u.username.clone(),
        u.email.clone(),
        u.roles.join(","),
        time(u.create_time.as_ref()),
    ]
}

/// One user, as `field: value` lines.
pub fn user_text(u: &User) -> String {
    [
        ("id", u.id.clone()),
        ("username", u.username.clone()),
        ("email", u.email.clone()),
        ("display name", u.display_name.clone()),
        ("roles", u.roles.join(", ")),
        ("created", time(u.create_time.as_ref())),
        ("updated", time(u.update_time.as_ref())),
    ]
    .iter()
    .map(|(k, v)| format!("{k:<13}{v}"))
    .collect::<Vec<_>>()
    .join("\n")
}

pub fn session_json(s: &Session) -> Value {
    json!({
        "id": s.id,
        "user_id": s.user_id,
        "create_time": time(s.create_time.as_ref()),
        "last_use_time": time(s.last_use_time.as_ref()),
        "expire_time": time(s.expire_time.as_ref()),
        "user_agent": s.user_agent,
        "ip_address": s.ip_address,
    })
}

pub const SESSION_HEADER: [&str; 5] = ["ID", "STARTED", "LAST USED", "ADDRESS", "USER AGENT"];

pub fn session_row(s: &Session) -> Vec<String> {
    vec![
        s.id.clone(),
        time(s.create_time.as_ref()),
        time(s.last_use_time.as_ref()),
        s.ip_address.clone(),
        s.user_agent.clone(),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_pad_every_column_to_its_widest_cell() {
        let t = super::table(&["A", "BB"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "A     BB\nlong  x");
    }
}
