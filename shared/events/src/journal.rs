//! The in-process bus's recent past on disk (`EVENTS_JOURNAL`; the
//! launcher keeps it in its data directory): without NATS, what the bus
//! holds would otherwise die with the process, and with it every
//! revocation (a restarted suite would take a logged-out token again) and
//! every stream's resume point. One JSON line per event, appended and
//! synced before the publisher is told the bus holds it; rewritten with
//! only what the bus keeps when it has grown to twice that.

use crate::{Error, event::Event};
use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
};
use uuid::Uuid;

/// Lines appended past the last rewrite before the next one, at least.
const REWRITE_SLACK: usize = 1024;

/// The open journal.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Lines in the file (what was kept at the last rewrite, and appended since).
    lines: usize,
    /// Lines the last rewrite kept.
    kept: usize,
}

/// An event and when the bus took it.
pub type Entry = (Event, DateTime<Utc>);

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Bus(format!("events journal {}: {what}: {e}", path.display()))
}

impl Journal {
    /// Opens the journal at `path` (created if missing) and reads what it
    /// holds from `since` on, oldest first, at most `keep_at_most` (the
    /// newest); the file is rewritten with just that.
    pub fn open(
        path: &Path,
        since: DateTime<Utc>,
        keep_at_most: usize,
    ) -> Result<(Self, Vec<Entry>), Error> {
        // Private, as the SQLite files beside it.
        suite_runtime::files::create_private_parent(path)
            .map_err(|e| io_error(path, "cannot create its directory", e))?;
        let mut entries = match File::open(path) {
            Ok(file) => read(path, file)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_error(path, "cannot read", e)),
        };
        // Two publishers append concurrently: the file's order is nearly
        // the bus's; the bus's is by when it took each.
        entries.sort_by_key(|(_, at)| *at);
        entries.retain(|(_, at)| *at >= since);
        let excess = entries.len().saturating_sub(keep_at_most);
        entries.drain(..excess);
        let file = rewrite(path, &entries)?;
        Ok((
            Self {
                path: path.to_owned(),
                file,
                lines: entries.len(),
                kept: entries.len(),
            },
            entries,
        ))
    }

    /// Appends `events`, taken by the bus at `at`, and syncs them to disk.
    pub fn append(&mut self, events: &[Event], at: DateTime<Utc>) -> Result<(), Error> {
        let mut text = String::new();
        for event in events {
            text.push_str(&encode(event, at));
            text.push('\n');
        }
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| io_error(&self.path, "cannot append", e))?;
        self.lines += events.len();
        Ok(())
    }

    /// Whether the file has grown enough past what the bus keeps to be
    /// rewritten.
    pub fn wants_rewrite(&self) -> bool {
        self.lines >= self.kept.saturating_mul(2).max(REWRITE_SLACK)
    }

    /// Rewrites the file with `entries` alone (what the bus keeps now).
    pub fn rewrite(&mut self, entries: &[Entry]) -> Result<(), Error> {
        self.file = rewrite(&self.path, entries)?;
        self.lines = entries.len();
        self.kept = entries.len();
        Ok(())
    }
}

/// Writes `entries` to a new file beside `path`, renames it over `path`,
/// and opens it for appending. Readable by the owner alone: events hold
/// email and client addresses.
fn rewrite(path: &Path, entries: &[Entry]) -> Result<File, Error> {
    let fresh = path.with_extension("rewrite");
    let mut text = String::new();
    for (event, at) in entries {
        text.push_str(&encode(event, *at));
        text.push('\n');
    }
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&fresh)
        .map_err(|e| io_error(&fresh, "cannot create", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io_error(&fresh, "cannot write", e))?;
    std::fs::rename(&fresh, path).map_err(|e| io_error(path, "cannot replace", e))?;
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| io_error(path, "cannot open", e))
}

fn read(path: &Path, file: File) -> Result<Vec<Entry>, Error> {
    let mut entries = Vec::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| io_error(path, "cannot read", e))?;
        if line.trim().is_empty() {
            continue;
        }
        match decode(&line) {
            Some(entry) => entries.push(entry),
            // A line cut short by a crash mid-append: that event was never
            // acknowledged (its outbox row is still there, and comes again).
            None => tracing::warn!(
                path = %path.display(),
                line = number + 1,
                "skipping an unreadable line of the events journal"
            ),
        }
    }
    Ok(entries)
}

fn encode(event: &Event, at: DateTime<Utc>) -> String {
    let mut line = serde_json::json!({
        "at": at.to_rfc3339_opts(SecondsFormat::Nanos, true),
        "id": event.id.to_string(),
        "type": event.event_type,
        "source": event.source,
        "subject": event.subject,
        "time": event.time.to_rfc3339_opts(SecondsFormat::Nanos, true),
        "data": STANDARD.encode(&event.data),
    });
    if let Some(tp) = &event.traceparent {
        line["traceparent"] = serde_json::Value::from(tp.as_str());
    }
    line.to_string()
}

fn decode(line: &str) -> Option<Entry> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let text = |name: &str| v.get(name)?.as_str().map(str::to_owned);
    let instant = |name: &str| {
        DateTime::parse_from_rfc3339(v.get(name)?.as_str()?)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    let event = Event {
        id: Uuid::parse_str(v.get("id")?.as_str()?).ok()?,
        event_type: text("type")?,
        source: text("source")?,
        subject: text("subject")?,
        time: instant("time")?,
        traceparent: text("traceparent"),
        data: Bytes::from(STANDARD.decode(v.get("data")?.as_str()?).ok()?),
    };
    Some((event, instant("at")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use suite_proto::user::UserDeleted;

    fn event() -> Event {
        Event::new(
            &UserDeleted {
                user_id: Uuid::now_v7().to_string(),
            },
            Uuid::now_v7(),
        )
    }

    #[test]
    fn what_is_appended_is_read_back_and_old_or_torn_lines_are_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.journal");
        let now = Utc::now();
        let (mut journal, past) = Journal::open(&path, now, 10).expect("opened");
        assert!(past.is_empty());
        let (old, recent) = (event(), event());
        journal
            .append(std::slice::from_ref(&old), now - chrono::Duration::hours(2))
            .expect("appended");
        journal
            .append(std::slice::from_ref(&recent), now)
            .expect("appended");
        // A crash in the middle of an append.
        journal.file.write_all(b"{\"at\":\"20").expect("torn");
        drop(journal);

        let (_, read) =
            Journal::open(&path, now - chrono::Duration::hours(1), 10).expect("reopened");
        assert_eq!(read, vec![(recent, now)]);
        // The rewrite kept only that.
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn at_most_the_newest_are_kept() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("events.journal");
        let now = Utc::now();
        let (mut journal, _) = Journal::open(&path, now, 2).expect("opened");
        let events = [event(), event(), event()];
        journal.append(&events, now).expect("appended");
        drop(journal);
        let (_, read) = Journal::open(&path, now, 2).expect("reopened");
        let ids: Vec<_> = read.iter().map(|(e, _)| e.id).collect();
        assert_eq!(ids, vec![events[1].id, events[2].id]);
    }
}
