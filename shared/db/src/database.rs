//! A service's database as its server sees it: the pool, and the service's
//! migrations for either backend. It is ready (for gRPC health) once
//! migrated, and while it answers.

use crate::{
    DatabaseUrl, PoolSettings,
    pool::{self, Pool},
};
use sqlx::migrate::{MigrateError, Migrator};
use std::sync::Arc;
use suite_grpc::server::{Check, Readiness};

/// A service's migrations, one set per backend (`sqlx::migrate!` of each folder).
#[derive(Debug)]
pub struct Migrations {
    pub postgres: Migrator,
    pub sqlite: Migrator,
    /// The table the `MIGRATE` span names: the service's main one.
    pub table: &'static str,
}

/// The pool and the migrations of one service's database.
#[derive(Debug, Clone)]
pub struct Database {
    pool: Pool,
    system: &'static str,
    migrations: &'static Migrations,
}

impl Database {
    /// Opens (lazily) the pool of `url`, reported in the metrics as `name`.
    pub fn open(
        url: &DatabaseUrl,
        name: &str,
        settings: PoolSettings,
        migrations: &'static Migrations,
    ) -> Result<Self, String> {
        Ok(Self {
            pool: pool::open(url, name, settings)?,
            system: url.backend().system_name(),
            migrations,
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The OpenTelemetry `db.system.name`, for the stores' spans.
    pub fn system_name(&self) -> &'static str {
        self.system
    }

    /// Applies the migrations not yet applied. On PostgreSQL sqlx holds an
    /// advisory lock meanwhile, so replicas starting together apply each once.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        let run = async {
            match &self.pool {
                Pool::Postgres(pool) => self.migrations.postgres.run(pool).await,
                Pool::Sqlite(pool) => self.migrations.sqlite.run(pool).await,
            }
        };
        let span = crate::span(self.system, "MIGRATE", self.migrations.table);
        crate::traced(span, run).await
    }

    /// One round trip (no span: readiness polls it every few seconds).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match &self.pool {
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }
}

impl Readiness for Database {
    fn migrate(&self) -> Check<'_> {
        Box::pin(async move { Database::migrate(self).await.map_err(|e| e.to_string()) })
    }

    fn ping(&self) -> Check<'_> {
        Box::pin(async move { Database::ping(self).await.map_err(|e| e.to_string()) })
    }
}

impl Database {
    /// The service's store on this pool, made by `postgres` or `sqlite`
    /// (whichever the URL names), every call of it in a database span.
    pub fn store<S: ?Sized>(
        &self,
        postgres: impl FnOnce(sqlx::PgPool) -> Arc<S>,
        sqlite: impl FnOnce(sqlx::SqlitePool) -> Arc<S>,
    ) -> Traced<S> {
        let inner = match &self.pool {
            Pool::Postgres(pool) => postgres(pool.clone()),
            Pool::Sqlite(pool) => sqlite(pool.clone()),
        };
        Traced {
            inner,
            system: self.system,
        }
    }
}

/// A store decorated with a client span per call: each service implements
/// its store trait for `Traced<dyn ItsStore>`, wrapping every call in
/// [`Traced::run`].
pub struct Traced<S: ?Sized> {
    inner: Arc<S>,
    system: &'static str,
}

impl<S: ?Sized> Traced<S> {
    /// The store underneath.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// `op` in a span of its `operation` on `table`, failed if it fails.
    pub async fn run<T, E>(
        &self,
        operation: &'static str,
        table: &'static str,
        op: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        crate::traced(crate::span(self.system, operation, table), op).await
    }
}
