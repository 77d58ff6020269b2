//! A fresh database per test, on SQLite or on the PostgreSQL at
//! `DATABASE_TEST_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`),
//! dropped when the test ends, even by a panic; [`on_both_databases!`](crate::on_both_databases);
//! and [`PrivatePostgres`], a server of the test's own that it may stop.

use std::sync::Mutex;
pub use suite_db::Backend;
use uuid::Uuid;

/// A fresh database, dropped with this value (or by [`TestDb::drop_database`]).
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Mutex<Option<String>>,
}

fn pg_admin_url() -> String {
    std::env::var("DATABASE_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    /// A new database named after `what`. `None` (with a visible message)
    /// when PostgreSQL is unreachable, unless `SUITE_REQUIRE_POSTGRES=1`, in
    /// which case this panics: the tests must not pass by skipping in CI.
    pub async fn create(backend: Backend, what: &str) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite:{}", dir.path().join(format!("{what}.db")).display());
                Some(Self {
                    url,
                    _dir: Some(dir),
                    pg_name: Mutex::new(None),
                })
            }
            Backend::Postgres => {
                use sqlx::{Connection, Executor};
                let admin = pg_admin_url();
                let mut conn = match sqlx::PgConnection::connect(&admin).await {
                    Ok(c) => c,
                    Err(e) => {
                        if std::env::var("SUITE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                            panic!(
                                "PostgreSQL at {admin} is required (SUITE_REQUIRE_POSTGRES=1) but unreachable: {e}"
                            );
                        }
                        eprintln!(
                            "SKIPPED: PostgreSQL at {admin} unreachable ({e}); set SUITE_REQUIRE_POSTGRES=1 to fail instead"
                        );
                        return None;
                    }
                };
                let name = format!("suite_{what}_test_{}", Uuid::now_v7().simple());
                conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .await
                    .expect("create test database");
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                Some(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    pg_name: Mutex::new(Some(name)),
                })
            }
        }
    }

    /// The URL, parsed.
    pub fn database_url(&self) -> suite_db::DatabaseUrl {
        self.url.parse().expect("a test database URL")
    }

    /// A handle on the database at `url`, which drops nothing (its server
    /// is the test's own).
    pub fn existing(url: String) -> Self {
        Self {
            url,
            _dir: None,
            pg_name: Mutex::new(None),
        }
    }

    /// Another handle on this database, which drops nothing.
    pub fn share(&self) -> Self {
        Self {
            url: self.url.clone(),
            _dir: None,
            pg_name: Mutex::new(None),
        }
    }

    /// Drops the PostgreSQL database now (a stopped server first, so its
    /// connections are gone); dropping the value does it otherwise.
    pub async fn drop_database(&self) {
        let name = self.pg_name.lock().ok().and_then(|mut n| n.take());
        if let Some(name) = name {
            drop_pg(&name).await;
        }
    }
}

/// Evaluates `$body` with `$pool` a pool of the database at `$url`
/// (SQLite or PostgreSQL: the same statements on either), then closes the
/// pool: `with_pool!(url, |pool| sqlx::query(sql).execute(&pool).await)`.
#[macro_export]
macro_rules! with_pool {
    ($url:expr, |$pool:ident| $body:expr) => {{
        let url: &str = &$url;
        if url.starts_with("sqlite:") {
            let $pool = $crate::sqlx::SqlitePool::connect(url)
                .await
                .expect("open SQLite");
            let out = $body;
            $pool.close().await;
            out
        } else {
            let $pool = $crate::sqlx::PgPool::connect(url)
                .await
                .expect("connect to PostgreSQL");
            let out = $body;
            $pool.close().await;
            out
        }
    }};
}

/// The rows of `table` in the database at `url` (PostgreSQL or SQLite).
pub async fn count_rows(url: &str, table: &str) -> i64 {
    let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}"));
    crate::with_pool!(url, |pool| sqlx::query_scalar(sql)
        .fetch_one(&pool)
        .await
        .expect("count"))
}

/// Waits (bounded by `patience`) until the relay has published every event
/// in the outbox of the database at `url`.
pub async fn outbox_drained(url: &str, patience: std::time::Duration) {
    crate::eventually("every event left the outbox", patience, async || {
        count_rows(url, "outbox").await == 0
    })
    .await;
}

async fn drop_pg(name: &str) {
    use sqlx::{Connection, Executor};
    if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
        let _ = conn
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
    }
}

impl Drop for TestDb {
    /// A test that panicked never reached its clean-up: the database goes
    /// here, on a thread of its own (a runtime cannot block inside another).
    fn drop(&mut self) {
        let Some(name) = self.pg_name.get_mut().ok().and_then(Option::take) else {
            return;
        };
        let dropper = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(drop_pg(&name));
            }
        });
        let _ = dropper.join();
    }
}

/// Runs each named test, an `async fn(App)`, on SQLite and on PostgreSQL,
/// with the `App` that `spawn(Backend)` starts (`None`: skipped): the one way
/// a test runs on both databases. The tests land in modules `sqlite` and
/// `postgres`; a second set in the same module names a module of its own
/// to hold them (`mod group; spawn; tests`). A test that makes its own
/// databases takes the [`Backend`] itself: `spawn` is then [`backend`].
#[macro_export]
macro_rules! on_both_databases {
    (mod $group:ident; $spawn:path; $($name:ident),* $(,)?) => {
        mod $group {
            use super::*;
            $crate::on_both_databases!($spawn; $($name),*);
        }
    };
    ($spawn:path; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $spawn($crate::Backend::Sqlite).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $spawn($crate::Backend::Postgres).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

/// The backend as it is, for [`on_both_databases!`](crate::on_both_databases)
/// over tests that take it and make their own databases.
pub async fn backend(backend: Backend) -> Option<Backend> {
    Some(backend)
}

/// A PostgreSQL server of a test's own (a temporary data directory, a free
/// port), which the test may stop and start again: Debian's server binaries
/// (`/usr/lib/postgresql/<newest>/bin`), run as the `postgres` user when
/// the test runs as root (PostgreSQL refuses root). `None` (with a visible
/// message) when the binaries are missing, unless `SUITE_REQUIRE_POSTGRES=1`.
pub struct PrivatePostgres {
    bin: std::path::PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivatePostgres {
    pub async fn start() -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .flatten()
                    .filter_map(|v| v.file_name().to_str()?.parse::<u32>().ok())
                    .max()
            })
            .map(|v| std::path::PathBuf::from(format!("/usr/lib/postgresql/{v}/bin")))
            .filter(|bin| bin.join("pg_ctl").exists());
        let Some(bin) = bin else {
            if std::env::var("SUITE_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                panic!(
                    "PostgreSQL's server binaries are required but not under /usr/lib/postgresql"
                );
            }
            eprintln!("SKIPPED: no PostgreSQL server binaries under /usr/lib/postgresql");
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let pg = Self { bin, dir, port };
        if is_root() {
            let chown = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .expect("chown");
            assert!(chown.success(), "chown of the data directory failed");
        }
        pg.run(
            "initdb",
            &["-A", "trust", "-U", "postgres", "--no-sync", "-D"],
            true,
        );
        pg.start_again().await;
        Some(pg)
    }

    /// The URL of a database `name` on it (created by [`Self::create_database`]).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    pub async fn create_database(&self, name: &str) {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the private server");
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .await
            .expect("create database");
    }

    /// Its server log so far (errors of every statement included: what a
    /// test asserts was never run shows here).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Stops it as an operator does (`pg_ctl stop -m fast`: connections
    /// are told 57P01 "terminating connection due to administrator command").
    pub fn stop(&self) {
        self.run("pg_ctl", &["stop", "-m", "fast", "-w", "-D"], true);
    }

    /// Starts it (again), returning once it accepts connections.
    pub async fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let log = log.to_str().expect("a UTF-8 path");
        self.run(
            "pg_ctl",
            &["start", "-w", "-l", log, "-o", &options, "-D"],
            true,
        );
    }

    /// Runs `program` of the server's binaries with `args`, the data
    /// directory last, as the `postgres` user when we are root.
    fn run(&self, program: &str, args: &[&str], must_succeed: bool) {
        let data = self.dir.path().join("data");
        let mut command = if is_root() {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(program));
            c
        } else {
            std::process::Command::new(self.bin.join(program))
        };
        let out = command
            .args(args)
            .arg(&data)
            .output()
            .expect("run a PostgreSQL binary");
        if must_succeed && !out.status.success() {
            panic!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.run("pg_ctl", &["stop", "-m", "immediate", "-w", "-D"], false);
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}
