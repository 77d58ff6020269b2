//! What a database error means for the call that met it, so that every
//! fault is a fast, retryable Unavailable and never an internal error: the
//! database cannot be reached (the pool is marked down, see [`crate::health`]),
//! it is overloaded, or two transactions collided (run again a few times).
//! Anything else is the statement's own failure.

/// The kind of a database fault (see [`classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The server cannot be reached or is shutting down: connection errors,
    /// SQLSTATE class 08, 57P01–57P03.
    Unreachable,
    /// No pooled connection came within the acquire timeout: the pool is
    /// full, or (with no connection open) the server cannot be reached.
    PoolTimedOut,
    /// The server refuses work for now: too many connections, out of
    /// resources (class 53), read-only (a standby after a failover), a busy
    /// SQLite file after its busy timeout.
    Overloaded,
    /// A deadlock or a serialization failure (40P01, 40001), a stale SQLite
    /// snapshot: nothing was done, and running the operation again can succeed.
    Contention,
}

/// The fault `e` is, or `None` for the statement's own failure (a
/// constraint, a syntax error, a bug).
pub fn classify(e: &sqlx::Error) -> Option<Fault> {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(Fault::Unreachable),
        sqlx::Error::PoolTimedOut => Some(Fault::PoolTimedOut),
        sqlx::Error::Database(db) => db.code().and_then(|code| by_code(&code)),
        _ => None,
    }
}

/// PostgreSQL's SQLSTATE (five characters, often all digits) or SQLite's
/// extended result code (a number below 10,000).
fn by_code(code: &str) -> Option<Fault> {
    if code.len() < 5
        && let Ok(sqlite) = code.parse::<u32>()
    {
        return match (sqlite & 0xff, sqlite) {
            // SQLITE_BUSY_SNAPSHOT: a read transaction that cannot become a
            // write one; the busy handler does not wait for it.
            (_, 517) => Some(Fault::Contention),
            // SQLITE_BUSY / SQLITE_LOCKED once the busy timeout has passed.
            (5 | 6, _) => Some(Fault::Overloaded),
            _ => None,
        };
    }
    match code {
        "40001" | "40P01" => Some(Fault::Contention),
        "57P01" | "57P02" | "57P03" => Some(Fault::Unreachable),
        // read_only_sql_transaction: a primary that became a standby.
        "25006" => Some(Fault::Overloaded),
        // query_canceled: a statement timeout, or cancelled by an operator.
        "57014" => Some(Fault::Overloaded),
        _ if code.starts_with("08") => Some(Fault::Unreachable),
        _ if code.starts_with("53") => Some(Fault::Overloaded),
        _ => None,
    }
}

/// A store's error type, as the database plumbing sees it.
pub trait StoreFault {
    /// The database fault this error is, if it is one.
    fn fault(&self) -> Option<Fault>;
    /// The error of a call refused at once while the database is down.
    fn database_down() -> Self;
}

/// Implements [`StoreFault`] for a store's error type whose variant
/// `$variant(Fault, String)` says the database is unavailable (each
/// service's store error has one): the rule is the same for every store.
#[macro_export]
macro_rules! store_fault {
    ($error:ty, $variant:ident) => {
        impl $crate::StoreFault for $error {
            fn fault(&self) -> Option<$crate::Fault> {
                match self {
                    Self::$variant(fault, _) => Some(*fault),
                    _ => None,
                }
            }

            fn database_down() -> Self {
                Self::$variant(
                    $crate::Fault::Unreachable,
                    "the database is down; waiting for it to answer again".into(),
                )
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_their_faults() {
        for (code, fault) in [
            ("08006", Some(Fault::Unreachable)),
            ("08001", Some(Fault::Unreachable)),
            ("57P01", Some(Fault::Unreachable)),
            ("57P02", Some(Fault::Unreachable)),
            ("57P03", Some(Fault::Unreachable)),
            ("53300", Some(Fault::Overloaded)),
            ("53100", Some(Fault::Overloaded)),
            ("25006", Some(Fault::Overloaded)),
            ("40001", Some(Fault::Contention)),
            ("40P01", Some(Fault::Contention)),
            ("23505", None),
            ("42601", None),
            ("57014", Some(Fault::Overloaded)),
            ("5", Some(Fault::Overloaded)),
            ("6", Some(Fault::Overloaded)),
            ("261", Some(Fault::Overloaded)),
            ("517", Some(Fault::Contention)),
            ("2067", None),
            ("19", None),
        ] {
            assert_eq!(by_code(code), fault, "{code}");
        }
    }

    #[test]
    fn connection_errors_are_unreachable() {
        let io = sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(classify(&io), Some(Fault::Unreachable));
        assert_eq!(
            classify(&sqlx::Error::PoolTimedOut),
            Some(Fault::PoolTimedOut)
        );
        assert_eq!(classify(&sqlx::Error::RowNotFound), None);
    }
}
