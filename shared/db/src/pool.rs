//! Connection pools that connect on first use (a service starts, not
//! ready, while its database is down, and reconnects by itself), their
//! settings, and their connection counts in the metrics.

use crate::health::Outages;
use crate::{Backend, DatabaseUrl};
use clap::builder::TypedValueParser as _;
use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{family::Family, gauge::Gauge},
};
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions},
};
use std::{
    path::Path,
    str::FromStr,
    sync::{Arc, LazyLock},
    time::Duration,
};

/// The database connection pool.
#[derive(Debug, Clone, clap::Args)]
pub struct PoolArgs {
    /// Most database connections the service holds.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: u32,

    /// Seconds a call waits for a database connection before it is Unavailable.
    #[arg(long = "database-acquire-timeout-secs", env = "DATABASE_ACQUIRE_TIMEOUT_SECS", value_name = "DATABASE_ACQUIRE_TIMEOUT_SECS", default_value = "3", value_parser = clap::value_parser!(u64).range(1..=300).map(Duration::from_secs))]
    pub database_acquire_timeout: Duration,
}

impl PoolArgs {
    pub fn settings(&self) -> PoolSettings {
        PoolSettings {
            max_connections: self.database_max_connections,
            acquire_timeout: self.database_acquire_timeout,
        }
    }
}

/// Pool settings common to both databases.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a call waits for a connection before it is Unavailable.
    pub acquire_timeout: Duration,
}

/// A pooled PostgreSQL connection idle this long is pinged before use.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// A PostgreSQL pool that connects on first use, so a service starts (not
/// ready) while the database is down and reconnects by itself.
/// Connections opened before the latest outage that `outages` noticed are
/// pinged too: after a restart of the server they are dead.
fn postgres_pool(url: &str, s: PoolSettings, outages: Arc<Outages>) -> Result<PgPool, String> {
    PgPoolOptions::new()
        .max_connections(s.max_connections)
        .acquire_timeout(s.acquire_timeout)
        // sqlx pings every connection before handing it out: a second round
        // trip per query. Only a connection idle for a while may have been
        // cut (a restarted server, a firewall's idle timeout): ping those.
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            let stale = meta.idle_for >= PING_IF_IDLE_FOR || outages.predates_outage(meta.age);
            Box::pin(async move {
                if stale {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .connect_lazy(url)
        .map_err(|e| e.to_string())
}

/// An SQLite pool on a file created (with its directory) if missing.
fn sqlite_pool(url: &str, s: PoolSettings) -> Result<SqlitePool, String> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| e.to_string())?
        .create_if_missing(true)
        // WAL lets readers go on while one writer writes; the busy timeout
        // queues concurrent writers instead of failing them.
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let path = options.get_filename();
    if !path.to_string_lossy().starts_with(":memory:") && !url.contains("mode=memory") {
        create_private(path)?;
    }
    Ok(SqlitePoolOptions::new()
        // A file cannot drop a connection: no ping before each query.
        .test_before_acquire(false)
        .max_connections(s.max_connections)
        .acquire_timeout(s.acquire_timeout)
        .connect_lazy_with(options))
}

/// Creates the database file (and its directory) readable by this user
/// alone, if missing: it holds password hashes, emails and token hashes.
/// SQLite gives its `-wal` and `-shm` files the database file's mode.
fn create_private(path: &Path) -> Result<(), String> {
    let fail = |what: &Path, e: std::io::Error| format!("cannot create {}: {e}", what.display());
    suite_runtime::files::create_private_parent(path)
        .map_err(|e| fail(path.parent().unwrap_or(path), e))?;
    let mut file = std::fs::OpenOptions::new();
    file.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut file, 0o600);
    match file.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail(path, e)),
    }
}

/// A service's pool, on the database its URL names.
#[derive(Debug, Clone)]
pub enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl Pool {
    /// Connections open (idle or in use).
    pub fn size(&self) -> u32 {
        match self {
            Pool::Postgres(p) => p.size(),
            Pool::Sqlite(p) => p.size(),
        }
    }

    /// Opens and closes one connection outside the pool (PostgreSQL; an
    /// SQLite file is always there): whether the server can be reached now.
    pub async fn connect_directly(&self) -> Result<(), sqlx::Error> {
        match self {
            Pool::Postgres(pool) => {
                use sqlx::Connection;
                let conn = sqlx::PgConnection::connect_with(&pool.connect_options()).await?;
                conn.close().await
            }
            Pool::Sqlite(_) => Ok(()),
        }
    }

    /// One round trip.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }
}

/// Opens (lazily) the pool of `url`, reported in the metrics as `name`;
/// `outages` is its breaker's record (see [`crate::health`]).
pub fn open(
    url: &DatabaseUrl,
    name: &str,
    s: PoolSettings,
    outages: Arc<Outages>,
) -> Result<Pool, String> {
    let pool = match url.backend() {
        Backend::Postgres => Pool::Postgres(postgres_pool(url.expose(), s, outages)?),
        Backend::Sqlite => Pool::Sqlite(sqlite_pool(url.expose(), s)?),
    };
    let watched = pool.clone();
    watch(name, move || match &watched {
        Pool::Postgres(p) => (p.size(), p.num_idle()),
        Pool::Sqlite(p) => (p.size(), p.num_idle()),
    });
    Ok(pool)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    db_client_connection_pool_name: String,
    db_client_connection_state: &'static str,
}

static CONNECTIONS: LazyLock<Family<PoolLabels, Gauge>> = LazyLock::new(|| {
    suite_telemetry::metrics::metrics().registered(
        "db_client_connection_count",
        "Database connections of each pool, by state (idle or used)",
        Family::default(),
    )
});

/// Reports a pool's connections (total, idle) under `name` at every scrape;
/// a newer pool of that name replaces the older one.
fn watch(name: &str, size: impl Fn() -> (u32, usize) + Send + Sync + 'static) {
    let gauges = CONNECTIONS.clone();
    let name = name.to_owned();
    suite_telemetry::metrics::metrics().on_scrape(&format!("pool:{name}"), move || {
        let (total, idle) = size();
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        let used = i64::from(total).saturating_sub(idle);
        for (state, value) in [("idle", idle), ("used", used)] {
            gauges
                .get_or_create(&PoolLabels {
                    db_client_connection_pool_name: name.clone(),
                    db_client_connection_state: state,
                })
                .set(value);
        }
    });
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777)
    }

    #[tokio::test]
    async fn a_new_sqlite_database_is_private_to_its_user() -> Result<(), Box<dyn std::error::Error>>
    {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data");
        let file = dir.join("user.db");
        let url: DatabaseUrl = format!("sqlite:{}", file.display()).parse()?;
        let settings = PoolSettings {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(5),
        };
        let Pool::Sqlite(pool) = open(&url, "test", settings, Arc::default())? else {
            return Err("not SQLite".into());
        };
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(&pool)
            .await?;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&file), 0o600);
        assert_eq!(mode(&dir.join("user.db-wal")), 0o600);
        Ok(())
    }
}
