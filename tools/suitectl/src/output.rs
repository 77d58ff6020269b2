//! How results are shown: aligned text for people, JSON for scripts.

use serde_json::{Value, json};
use suite_proto::{
    auth::Session,
    user::{Factor, ListFactorsResponse, User},
};

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

/// A user's second factors and recovery codes left, as one document.
pub fn factors_json(user_id: &str, f: &ListFactorsResponse) -> Value {
    json!({
        "user_id": user_id,
        "factors": f.factors.iter().map(factor_json).collect::<Vec<_>>(),
        "recovery_codes_left": f.recovery_codes_left,
    })
}

pub fn factor_json(f: &Factor) -> Value {
    json!({
        "id": f.id,
        "kind": f.kind,
        "name": f.name,
        "confirmed": f.confirmed,
        "create_time": time(f.create_time.as_ref()),
        "last_use_time": time(f.last_use_time.as_ref()),
    })
}

pub const FACTOR_HEADER: [&str; 6] = ["ID", "KIND", "NAME", "CONFIRMED", "CREATED", "LAST USED"];

pub fn factor_row(f: &Factor) -> Vec<String> {
    vec![
        f.id.clone(),
        f.kind.clone(),
        f.name.clone(),
        if f.confirmed { "yes" } else { "no" }.to_owned(),
        time(f.create_time.as_ref()),
        time(f.last_use_time.as_ref()),
    ]
}

/// The factors' table and the recovery codes left, for people.
pub fn factors_text(f: &ListFactorsResponse) -> String {
    let codes = format!("recovery codes left: {}", f.recovery_codes_left);
    if f.factors.is_empty() {
        return format!("no second factors (the password alone signs in)\n{codes}");
    }
    let rows: Vec<Vec<String>> = f.factors.iter().map(factor_row).collect();
    format!("{}\n{codes}", table(&FACTOR_HEADER, &rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn factors() -> ListFactorsResponse {
        ListFactorsResponse {
            factors: vec![
                Factor {
                    id: "0190f5c4-0000-7000-8000-000000000001".into(),
                    kind: "totp".into(),
                    name: "Phone".into(),
                    confirmed: true,
                    create_time: Some(prost_types::Timestamp {
                        seconds: 1_700_000_000,
                        nanos: 0,
                    }),
                    last_use_time: Some(prost_types::Timestamp {
                        seconds: 1_700_003_600,
                        nanos: 0,
                    }),
                },
                Factor {
                    id: "0190f5c4-0000-7000-8000-000000000002".into(),
                    kind: "totp".into(),
                    name: "Tablet".into(),
                    confirmed: false,
                    create_time: Some(prost_types::Timestamp {
                        seconds: 1_700_007_200,
                        nanos: 0,
                    }),
                    last_use_time: None,
                },
            ],
            recovery_codes_left: 9,
        }
    }

    #[test]
    fn factors_show_as_a_table_with_the_recovery_codes_left() {
        assert_eq!(
            factors_text(&factors()),
            "ID                                    KIND  NAME    CONFIRMED  CREATED               LAST USED\n\
             0190f5c4-0000-7000-8000-000000000001  totp  Phone   yes        2023-11-14T22:13:20Z  2023-11-14T23:13:20Z\n\
             0190f5c4-0000-7000-8000-000000000002  totp  Tablet  no         2023-11-15T00:13:20Z\n\
             recovery codes left: 9"
        );
        assert_eq!(
            factors_text(&ListFactorsResponse::default()),
            "no second factors (the password alone signs in)\nrecovery codes left: 0"
        );
    }

    #[test]
    fn factors_as_json_name_every_field_and_leave_a_time_never_set_empty() {
        let j = factors_json("u1", &factors());
        assert_eq!(j["user_id"], "u1");
        assert_eq!(j["recovery_codes_left"], 9);
        assert_eq!(
            j["factors"][0],
            json!({
                "id": "0190f5c4-0000-7000-8000-000000000001",
                "kind": "totp",
                "name": "Phone",
                "confirmed": true,
                "create_time": "2023-11-14T22:13:20Z",
                "last_use_time": "2023-11-14T23:13:20Z",
            })
        );
        assert_eq!(j["factors"][1]["confirmed"], false);
        assert_eq!(j["factors"][1]["last_use_time"], "");
    }

    #[test]
    fn tables_pad_every_column_to_its_widest_cell() {
        let t = table(&["A", "BB"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "A     BB\nlong  x");
    }
}
