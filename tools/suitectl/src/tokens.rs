//! `suitectl tokens …`: a user's personal access tokens, over the auth
//! service's TokenService. A token's secret is printed once, at creation:
//! the service keeps only its hash.

use super::{
    connect::Conn,
    error::CtlError,
    output::{self, Format},
};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use suite_proto::auth::{
    CreatePersonalAccessTokenRequest, CreatePersonalAccessTokenResponse,
    ListPersonalAccessTokensRequest, PersonalAccessToken, RevokePersonalAccessTokenRequest,
};

/// The scopes a token may carry (the contract's list).
pub const SCOPES: [&str; 3] = ["user:read", "user:write", "admin"];

/// `--expires-in`: `90d`, `12h`, `30m`, or a plain number of days; more
/// than zero.
pub fn parse_lifetime(text: &str) -> Result<chrono::Duration, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_lowercase()),
        _ => (text, 'd'),
    };
    let bad = || format!("{text:?} is not a lifetime: give e.g. 90d, 12h, 30m or a number of days");
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n: i64 = digits.parse().map_err(|_| bad())?;
    if n == 0 {
        return Err(format!("{text:?}: the lifetime must be more than zero"));
    }
    let lifetime = match unit {
        'd' => chrono::Duration::try_days(n),
        'h' => chrono::Duration::try_hours(n),
        'm' => chrono::Duration::try_minutes(n),
        _ => return Err(bad()),
    };
    lifetime.ok_or_else(|| format!("{text:?} is too long a lifetime"))
}

/// `--expires-at`: an RFC 3339 time, e.g. `2027-01-31T00:00:00Z`.
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time (e.g. 2027-01-31T00:00:00Z): {e}"))
}

/// When a token made `now` stops working: `expires_at`, or `expires_in`
/// from now; one of them is needed (clap requires it; this names the flags
/// if it is called without).
pub fn expiry(
    expires_in: Option<chrono::Duration>,
    expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<prost_types::Timestamp, CtlError> {
    let at = match (expires_in, expires_at) {
        (_, Some(at)) => at,
        (Some(lifetime), None) => now
            .checked_add_signed(lifetime)
            .ok_or_else(|| CtlError::Usage("--expires-in: too long a lifetime".into()))?,
        (None, None) => {
            return Err(CtlError::Usage(
                "tokens create: give --expires-in (e.g. 30d) or --expires-at (RFC 3339)".into(),
            ));
        }
    };
    Ok(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// Creates a token for `user_id`; the answer holds its secret, once.
pub async fn create(
    conn: &mut Conn,
    user_id: String,
    name: String,
    scopes: Vec<String>,
    expire_time: prost_types::Timestamp,
) -> Result<CreatePersonalAccessTokenResponse, CtlError> {
    let req = conn.req(CreatePersonalAccessTokenRequest {
        name,
        scopes,
        expire_time: Some(expire_time),
        user_id,
    })?;
    let reply = conn
        .tokens
        .create_personal_access_token(req)
        .await
        .map_err(|s| CtlError::from_status("creating the token", &s))?
        .into_inner();
    if reply.token.is_none() || reply.secret.is_empty() {
        return Err(CtlError::Failed(
            "the service answered without the token or its secret".into(),
        ));
    }
    Ok(reply)
}

/// The user's tokens, newest first (never their secrets).
pub async fn list(conn: &mut Conn, user_id: String) -> Result<Vec<PersonalAccessToken>, CtlError> {
    let req = conn.req(ListPersonalAccessTokensRequest { user_id })?;
    Ok(conn
        .tokens
        .list_personal_access_tokens(req)
        .await
        .map_err(|s| CtlError::from_status("listing the tokens", &s))?
        .into_inner()
        .tokens)
}

pub async fn revoke(conn: &mut Conn, id: String) -> Result<(), CtlError> {
    let req = conn.req(RevokePersonalAccessTokenRequest { id })?;
    conn.tokens
        .revoke_personal_access_token(req)
        .await
        .map_err(|s| CtlError::from_status("revoking the token", &s))?;
    Ok(())
}

pub fn token_json(t: &PersonalAccessToken) -> Value {
    json!({
        "id": t.id,
        "user_id": t.user_id,
        "name": t.name,
        "prefix": t.prefix,
        "scopes": t.scopes,
        "create_time": output::time(t.create_time.as_ref()),
        "expire_time": output::time(t.expire_time.as_ref()),
        "last_use_time": output::time(t.last_use_time.as_ref()),
    })
}

pub const TOKEN_HEADER: [&str; 7] = [
    "ID",
    "NAME",
    "PREFIX",
    "SCOPES",
    "CREATED",
    "EXPIRES",
    "LAST USED",
];

fn last_used(t: &PersonalAccessToken) -> String {
    match t.last_use_time {
        Some(ref when) => output::time(Some(when)),
        None => "never".to_owned(),
    }
}

pub fn token_row(t: &PersonalAccessToken) -> Vec<String> {
    vec![
        t.id.clone(),
        t.name.clone(),
        t.prefix.clone(),
        t.scopes.join(","),
        output::time(t.create_time.as_ref()),
        output::time(t.expire_time.as_ref()),
        last_used(t),
    ]
}

/// The tokens: a JSON array, or a table for people.
pub fn print_list(format: Format, tokens: &[PersonalAccessToken]) -> String {
    match format {
        Format::Json => Value::from(tokens.iter().map(token_json).collect::<Vec<_>>()).to_string(),
        Format::Text if tokens.is_empty() => "no personal access tokens".to_owned(),
        Format::Text => output::table(
            &TOKEN_HEADER,
            &tokens.iter().map(token_row).collect::<Vec<_>>(),
        ),
    }
}

/// A new token and its secret: in JSON the whole answer (`token` and
/// `secret`); for people, the token's fields, the secret and a warning
/// that it is shown this once.
pub fn print_created(format: Format, created: &CreatePersonalAccessTokenResponse) -> String {
    let token = created.token.clone().unwrap_or_default();
    match format {
        Format::Json => json!({
            "token": token_json(&token),
            "secret": created.secret,
        })
        .to_string(),
        Format::Text => {
            let fields = [
                ("id", token.id.clone()),
                ("user id", token.user_id.clone()),
                ("name", token.name.clone()),
                ("prefix", token.prefix.clone()),
                ("scopes", token.scopes.join(", ")),
                ("expires", output::time(token.expire_time.as_ref())),
                ("secret", created.secret.clone()),
            ];
            let block = fields
                .iter()
                .map(|(k, v)| format!("{k:<9}{v}"))
                .collect::<Vec<_>>()
                .join("\n");
            format!(
                "{block}\n\nwarning: this is the only time the secret is shown: it will not be shown again; store it now (the suite keeps only its hash)"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> PersonalAccessToken {
        PersonalAccessToken {
            id: "0190f5c4-0000-7000-8000-000000000001".into(),
            user_id: "0190f5c4-0000-7000-8000-0000000000aa".into(),
            name: "ci deploy".into(),
            prefix: "suitepat_AbCd".into(),
            scopes: vec!["user:read".into(), "user:write".into()],
            create_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            expire_time: Some(prost_types::Timestamp {
                seconds: 1_702_592_000,
                nanos: 0,
            }),
            last_use_time: None,
        }
    }

    #[test]
    fn lifetimes_are_days_hours_or_minutes_and_a_plain_number_is_days() {
        assert_eq!(parse_lifetime("90d"), Ok(chrono::Duration::days(90)));
        assert_eq!(parse_lifetime("12h"), Ok(chrono::Duration::hours(12)));
        assert_eq!(parse_lifetime("30m"), Ok(chrono::Duration::minutes(30)));
        assert_eq!(parse_lifetime("30"), Ok(chrono::Duration::days(30)));
        assert_eq!(parse_lifetime("7D"), Ok(chrono::Duration::days(7)));
        for bad in [
            "",
            "d",
            "0d",
            "0",
            "-1d",
            "1.5d",
            "3w",
            "12s",
            "1d2h",
            "99999999999999999999d",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_expiry_is_the_time_given_or_the_lifetime_from_now() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("now");
        let at = expiry(Some(chrono::Duration::days(30)), None, now).expect("in");
        assert_eq!(at.seconds, 1_700_000_000 + 30 * 86_400);
        let given = parse_time("2027-01-31T00:00:00+01:00").expect("rfc3339");
        let at = expiry(None, Some(given), now).expect("at");
        assert_eq!(at.seconds, given.timestamp());
        let e = expiry(None, None, now).expect_err("neither");
        assert!(e.to_string().contains("--expires-in"), "{e}");
        assert!(e.to_string().contains("--expires-at"), "{e}");
        assert!(parse_time("tomorrow").is_err());
    }

    #[test]
    fn tokens_list_as_a_table_with_never_for_an_unused_token() {
        let mut used = token();
        used.id = "0190f5c4-0000-7000-8000-000000000002".into();
        used.name = "laptop".into();
        used.scopes = vec!["user:read".into()];
        used.last_use_time = Some(prost_types::Timestamp {
            seconds: 1_700_003_600,
            nanos: 0,
        });
        assert_eq!(
            print_list(Format::Text, &[token(), used]),
            "ID                                    NAME       PREFIX         SCOPES                CREATED               EXPIRES               LAST USED\n\
             0190f5c4-0000-7000-8000-000000000001  ci deploy  suitepat_AbCd  user:read,user:write  2023-11-14T22:13:20Z  2023-12-14T22:13:20Z  never\n\
             0190f5c4-0000-7000-8000-000000000002  laptop     suitepat_AbCd  user:read             2023-11-14T22:13:20Z  2023-12-14T22:13:20Z  2023-11-14T23:13:20Z"
        );
        assert_eq!(print_list(Format::Text, &[]), "no personal access tokens");
        let json: Value =
            serde_json::from_str(&print_list(Format::Json, &[token()])).expect("json");
        assert_eq!(json[0]["prefix"], "suitepat_AbCd");
        assert_eq!(json[0]["last_use_time"], "");
        assert_eq!(json[0]["scopes"], json!(["user:read", "user:write"]));
    }

    #[test]
    fn the_secret_is_printed_once_with_a_warning_or_in_the_json_answer() {
        let created = CreatePersonalAccessTokenResponse {
            token: Some(token()),
            secret: "suitepat_s3cret".into(),
        };
        let json: Value =
            serde_json::from_str(&print_created(Format::Json, &created)).expect("json");
        assert_eq!(json["secret"], "suitepat_s3cret");
        assert_eq!(json["token"]["id"], "0190f5c4-0000-7000-8000-000000000001");
        assert_eq!(json["token"]["expire_time"], "2023-12-14T22:13:20Z");
        let text = print_created(Format::Text, &created);
        for part in [
            "0190f5c4-0000-7000-8000-000000000001",
            "ci deploy",
            "suitepat_AbCd",
            "user:read, user:write",
            "2023-12-14T22:13:20Z",
            "secret   suitepat_s3cret",
            "will not be shown again",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert_eq!(text.matches("suitepat_s3cret").count(), 1, "{text}");
    }
}
