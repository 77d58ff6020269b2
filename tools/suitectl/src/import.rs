//! `suitectl users import FILE`: JSON lines of users with their password
//! hashes, checked line by line, sent in batches (ImportUsers), and every
//! line that did not become a user reported with its number and reason.

use super::{connect::Conn, error::CtlError};
use clap::builder::TypedValueParser as _;
use prost::Message;
use serde::Deserialize;
use std::{
    collections::HashMap,
    io::{BufRead, IsTerminal},
    sync::Arc,
};
use suite_proto::user::{ImportUsersRequest, ImportedUser, import_result::Outcome};
use tokio::task::JoinSet;

/// The most users the service takes per call.
pub const MAX_BATCH: usize = 1000;
/// A batch's largest encoded size: under the services' default
/// GRPC_MAX_MESSAGE_BYTES (64 KiB), with room for the envelope.
const MAX_BATCH_BYTES: usize = 60 * 1024;

/// One line of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    username: String,
    email: String,
    #[serde(default)]
    display_name: Option<String>,
    password_hash: String,
    /// RFC 3339.
    #[serde(default)]
    created_at: Option<String>,
}

/// What the import did, line by line.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    pub lines: usize,
    pub created: usize,
    /// Lines whose user (by username or email) already existed.
    pub skipped: Vec<LineOutcome>,
    /// Lines that failed, with why.
    pub failed: Vec<LineOutcome>,
    /// Set when a batch could not be sent (its lines are in `failed`).
    #[serde(skip)]
    pub unreachable: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LineOutcome {
    pub line: usize,
    pub reason: String,
}

impl Report {
    fn fail(&mut self, line: usize, reason: impl Into<String>) {
        self.failed.push(LineOutcome {
            line,
            reason: reason.into(),
        });
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The JSON-lines file (`-`: stdin): `username`, `email`, optional
    /// `display_name`, `password_hash` (bcrypt or argon2 PHC), optional
    /// `created_at` (RFC 3339).
    pub file: String,
    /// Users per ImportUsers call (also kept under 60 KiB a call).
    #[arg(long, default_value_t = MAX_BATCH, value_parser = clap::value_parser!(u16).range(1..=1000).map(usize::from))]
    pub batch_size: usize,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=32).map(usize::from))]
    pub concurrency: usize,
}

/// Reads `source` line by line: the users to send (with their line
/// numbers), and the lines already failed into `report`.
fn parse(
    source: impl BufRead,
    report: &mut Report,
) -> Result<Vec<(usize, ImportedUser)>, CtlError> {
    let mut users = Vec::new();
    let mut usernames: HashMap<String, usize> = HashMap::new();
    let mut emails: HashMap<String, usize> = HashMap::new();
    for (i, raw) in source.split(b'\n').enumerate() {
        let n = i + 1;
        let raw = raw.map_err(|e| CtlError::Failed(format!("reading line {n}: {e}")))?;
        report.lines = n;
        let Ok(text) = String::from_utf8(raw) else {
            report.fail(n, "not UTF-8");
            continue;
        };
        let text = text.trim();
        if text.is_empty() {
            report.lines = n;
            continue;
        }
        let line: Line = match serde_json::from_str(text) {
            Ok(l) => l,
            Err(e) => {
                report.fail(n, format!("invalid JSON: {e}"));
                continue;
            }
        };
        let create_time = match line.created_at.as_deref().map(created_at).transpose() {
            Ok(t) => t,
            Err(e) => {
                report.fail(n, format!("created_at: {e}"));
                continue;
            }
        };
        let username = suite_proto::canonical_login(&line.username);
        let email = suite_proto::canonical_login(&line.email);
        if let Some(first) = usernames.get(&username) {
            report.fail(n, format!("username: duplicate of line {first}"));
            continue;
        }
        if let Some(first) = emails.get(&email) {
            report.fail(n, format!("email: duplicate of line {first}"));
            continue;
        }
        usernames.insert(username, n);
        emails.insert(email, n);
        users.push((
            n,
            ImportedUser {
                username: line.username,
                email: line.email,
                display_name: line.display_name.unwrap_or_default(),
                password_hash: line.password_hash,
                create_time,
            },
        ));
    }
    Ok(users)
}

fn created_at(raw: &str) -> Result<prost_types::Timestamp, String> {
    let t = chrono::DateTime::parse_from_rfc3339(raw)
        .map_err(|e| format!("{raw:?} is not an RFC 3339 time: {e}"))?;
    Ok(prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// `users` cut into calls of at most `size` users and `MAX_BATCH_BYTES`.
fn batches(users: Vec<(usize, ImportedUser)>, size: usize) -> Vec<Vec<(usize, ImportedUser)>> {
    let mut out = Vec::new();
    let mut batch = Vec::new();
    let mut bytes = 0;
    for (n, u) in users {
        // Each repeated element costs its length, a tag and a length prefix.
        let len = u.encoded_len() + 6;
        if !batch.is_empty() && (batch.len() >= size || bytes + len > MAX_BATCH_BYTES) {
            out.push(std::mem::take(&mut batch));
            bytes = 0;
        }
        bytes += len;
        batch.push((n, u));
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

/// Imports the file `args` names; `progress`: whether a bar may be drawn.
pub async fn run(conn: &Conn, args: &ImportArgs, progress: bool) -> Result<Report, CtlError> {
    let mut report = Report::default();
    let users = if args.file == "-" {
        parse(std::io::stdin().lock(), &mut report)?
    } else {
        let file = std::fs::File::open(&args.file)
            .map_err(|e| CtlError::Usage(format!("cannot open {}: {e}", args.file)))?;
        parse(std::io::BufReader::new(file), &mut report)?
    };
    let bar = if progress && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(report.lines as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} lines  {per_sec}  eta {eta}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.inc((report.lines - users.len()) as u64);

    let pending = batches(users, args.batch_size);
    let limit = Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut calls = JoinSet::new();
    for batch in pending {
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| CtlError::Failed(e.to_string()))?;
        let (lines, users): (Vec<usize>, Vec<ImportedUser>) = batch.into_iter().unzip();
        let req = conn.req(ImportUsersRequest { users })?;
        let mut client = conn.user.clone();
        calls.spawn(async move {
            let reply = client.import_users(req).await;
            drop(permit);
            (lines, reply)
        });
        // Answers are tallied as they come, so the bar moves.
        while let Some(done) = calls.try_join_next() {
            tally(done, &mut report, &bar)?;
        }
    }
    while let Some(done) = calls.join_next().await {
        tally(done, &mut report, &bar)?;
    }
    bar.finish_and_clear();
    report.failed.sort_by_key(|f| f.line);
    report.skipped.sort_by_key(|f| f.line);
    Ok(report)
}

type Answered = (
    Vec<usize>,
    Result<tonic::Response<suite_proto::user::ImportUsersResponse>, tonic::Status>,
);

fn tally(
    done: Result<Answered, tokio::task::JoinError>,
    report: &mut Report,
    bar: &indicatif::ProgressBar,
) -> Result<(), CtlError> {
    let (lines, reply) =
        done.map_err(|e| CtlError::Failed(format!("an import call failed: {e}")))?;
    bar.inc(lines.len() as u64);
    let results = match reply {
        Ok(r) => r.into_inner().results,
        Err(status) => {
            // The batch is one transaction: all of it or none of it is in.
            // A re-run skips whatever did go in.
            let e = CtlError::from_status("ImportUsers", &status);
            if matches!(e, CtlError::Unreachable(_)) {
                report.unreachable = Some(e.to_string());
            }
            for n in lines {
                report.fail(n, format!("not imported: {e}"));
            }
            return Ok(());
        }
    };
    if results.len() != lines.len() {
        for n in lines {
            report.fail(n, "the service's answer does not match the batch");
        }
        return Ok(());
    }
    for (n, r) in lines.into_iter().zip(results) {
        match r.outcome() {
            Outcome::Created => report.created += 1,
            Outcome::Skipped => report.skipped.push(LineOutcome {
                line: n,
                reason: r.reason,
            }),
            Outcome::Failed | Outcome::Unspecified => report.fail(n, r.reason),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_and_duplicates_are_reported_by_number() {
        let file = concat!(
            r#"{"username":"ada","email":"ada@example.com","password_hash":"$2b$04$x"}"#,
            "\n",
            "not json\n",
            "\n",
            r#"{"username":"ADA","email":"other@example.com","password_hash":"h"}"#,
            "\n",
            r#"{"username":"bob","email":"Ada@Example.com","password_hash":"h"}"#,
            "\n",
            r#"{"username":"cy","email":"cy@example.com"}"#,
            "\n",
            r#"{"username":"di","email":"di@example.com","password_hash":"h","created_at":"yesterday"}"#,
            "\n",
            r#"{"username":"ed","email":"ed@example.com","password_hash":"h","created_at":"2020-01-02T03:04:05Z","display_name":"Ed"}"#,
        );
        let mut report = Report::default();
        let users = parse(file.as_bytes(), &mut report).expect("parse");
        assert_eq!(users.iter().map(|u| u.0).collect::<Vec<_>>(), vec![1, 8]);
        let failed: Vec<usize> = report.failed.iter().map(|f| f.line).collect();
        assert_eq!(failed, vec![2, 4, 5, 6, 7]);
        assert!(report.failed[1].reason.contains("line 1"));
        assert!(report.failed[3].reason.contains("password_hash"));
        assert_eq!(report.lines, 8);
    }

    #[test]
    fn batches_keep_under_the_count_and_the_size() {
        let user = |i: usize| {
            (
                i,
                ImportedUser {
                    username: format!("user{i}"),
                    email: format!("user{i}@example.com"),
                    password_hash: "x".repeat(60),
                    ..ImportedUser::default()
                },
            )
        };
        let cut = batches((0..2500).map(user).collect(), 1000);
        assert!(cut.iter().all(|b| {
            ImportUsersRequest {
                users: b.iter().map(|u| u.1.clone()).collect(),
            }
            .encoded_len()
                <= MAX_BATCH_BYTES
        }));
        assert_eq!(cut.iter().map(Vec::len).sum::<usize>(), 2500);
        assert_eq!(batches((0..5).map(user).collect(), 2).len(), 3);
    }
}
