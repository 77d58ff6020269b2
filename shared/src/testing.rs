//! Test support (feature `test-support`): a fresh database per test, on
//! SQLite or on the PostgreSQL at `DATABASE_TEST_URL`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`).

use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database, dropped again by [`TestDb::drop_database`].
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn pg_admin_url() -> String {
    std::env::var("DATABASE_TEST_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl TestDb {
    /// A new database named after `what`. `None` (with a visible message)
    /// when PostgreSQL is unreachable, unless `SUITE_REQUIRE_POSTGRES=1`, in
    /// which case this panics: the tests must not pass by skipping in CI.
    #[allow(clippy::panic, clippy::expect_used)]
    pub async fn create(backend: Backend, what: &str) -> Option<Self> {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite:{}", dir.path().join(format!("{what}.db")).display());
                Some(Self {
                    url,
                    _dir: Some(dir),
                    pg_name: None,
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
                    pg_name: Some(name),
                })
            }
        }
    }

    /// Another handle on this database, which drops nothing.
    pub fn share(&self) -> Self {
        Self {
            url: self.url.clone(),
            _dir: None,
            pg_name: None,
        }
    }

    pub async fn drop_database(&self) {
        use sqlx::{Connection, Executor};
        if let Some(name) = &self.pg_name
            && let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await
        {
            let _ = conn
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    }
}
