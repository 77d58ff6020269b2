//! A service's database as its server sees it: the pool, and the service's
//! migrations for either backend. It is ready (for gRPC health) once
//! migrated, and while it answers.

use crate::{
    DatabaseUrl, PoolSettings, StoreFault,
    fault::Fault,
    health::Health,
    pool::{self, Pool},
};
use sqlx::migrate::{MigrateError, Migrator};
use std::{sync::Arc, time::Duration};
use suite_runtime::readiness::{Check, Readiness};
use tokio::sync::watch;

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
    health: Health,
    system: &'static str,
    migrations: &'static Migrations,
    /// `true` once [`Database::migrate`] has succeeded in this process.
    migrated: Arc<watch::Sender<bool>>,
}

/// Whether a [`Database`]'s migrations have run: what works on the
/// service's tables in the background (the outbox relay, event consumers)
/// waits for it, so that the first start on an empty database sends
/// nothing the database must refuse (`relation … does not exist`) while
/// the readiness check is still migrating. Serving does not wait: the
/// server answers from the start (NOT_SERVING until ready).
#[derive(Debug, Clone)]
pub struct Migrated(watch::Receiver<bool>);

impl Migrated {
    /// Completes once the migrations have run (at once if they have).
    pub async fn wait(&mut self) {
        if self.0.wait_for(|migrated| *migrated).await.is_err() {
            // The database is gone without having been migrated: its
            // tables must still not be touched (its users are stopping).
            std::future::pending::<()>().await;
        }
    }

    /// Whether the migrations have run.
    pub fn is_done(&self) -> bool {
        *self.0.borrow()
    }
}

impl Database {
    /// Opens (lazily) the pool of `url`, reported in the metrics as `name`.
    pub fn open(
        url: &DatabaseUrl,
        name: &str,
        settings: PoolSettings,
        migrations: &'static Migrations,
    ) -> Result<Self, String> {
        let outages = Arc::default();
        let pool = pool::open(url, name, settings, Arc::clone(&outages))?;
        Ok(Self {
            health: Health::new(pool.clone(), outages),
            pool,
            system: url.backend().system_name(),
            migrations,
            migrated: Arc::new(watch::Sender::new(false)),
        })
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Completes once [`Database::migrate`] has succeeded (on this value or
    /// a clone of it).
    pub fn migrated(&self) -> Migrated {
        Migrated(self.migrated.subscribe())
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
        crate::traced(span, run).await?;
        self.migrated.send_replace(true);
        Ok(())
    }

    /// One round trip (no span: readiness polls it every few seconds). A
    /// ping that finds the database unreachable trips the breaker too, so an
    /// outage is known before the next call meets it.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        let result = self.pool.ping().await;
        if let Err(e) = &result
            && let Some(fault) = crate::classify(e)
        {
            self.health.saw(fault);
        }
        result
    }

    /// Whether the database is known to be down (see [`crate::health`]).
    pub fn is_down(&self) -> bool {
        self.health.is_down()
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
            health: self.health.clone(),
        }
    }
}

/// How often an operation that met [`Fault::Contention`] runs again, and
/// the pause before each run (the colliding transaction is finishing).
const CONTENTION_PAUSES: [Duration; 3] = [
    Duration::from_millis(2),
    Duration::from_millis(10),
    Duration::from_millis(50),
];

/// A store decorated with a client span per call, the database's breaker
/// and the retry of collisions: each service implements its store trait for
/// `Traced<dyn ItsStore>`, wrapping every call in [`Traced::run`].
pub struct Traced<S: ?Sized> {
    inner: Arc<S>,
    system: &'static str,
    health: Health,
}

impl<S: ?Sized> Traced<S> {
    /// The store underneath.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// `op` in a span of its `operation` on `table`, failed if it fails;
    /// refused at once while the database is down; run again (a bounded
    /// number of times) when it collided with another transaction, which
    /// undid everything it did.
    pub async fn run<T, E, F, Fut>(
        &self,
        operation: &'static str,
        table: &'static str,
        op: F,
    ) -> Result<T, E>
    where
        E: StoreFault,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut pauses = CONTENTION_PAUSES.iter();
        loop {
            if self.health.is_down() {
                return Err(E::database_down());
            }
            let span = crate::span(self.system, operation, table);
            let call = crate::traced(span, op());
            // A read may be given up once the database is known down (it
            // changes nothing); a write waits for its own answer, which
            // alone says whether it was applied.
            let result = if operation == "SELECT" {
                tokio::select! {
                    biased;
                    result = call => result,
                    () = self.health.until_down() => Err(E::database_down()),
                }
            } else {
                call.await
            };
            let fault = match &result {
                Err(e) => e.fault(),
                Ok(_) => None,
            };
            match fault {
                Some(Fault::Contention) => match pauses.next() {
                    Some(pause) => {
                        tracing::debug!(
                            operation,
                            table,
                            "a transaction collided; running it again"
                        );
                        tokio::time::sleep(*pause).await;
                    }
                    None => return result,
                },
                Some(fault) => {
                    self.health.saw(fault);
                    return result;
                }
                None => return result,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static NO_MIGRATIONS: Migrations = Migrations {
        postgres: Migrator::DEFAULT,
        sqlite: Migrator::DEFAULT,
        table: "nothing",
    };

    /// What waits for the migrations is held until `migrate` has succeeded
    /// (on any clone of the database), then released; a later waiter
    /// passes at once.
    #[tokio::test]
    async fn what_waits_for_the_migrations_starts_once_they_have_run() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url: crate::DatabaseUrl = format!("sqlite:{}", dir.path().join("m.db").display())
            .parse()
            .expect("a URL");
        let settings = PoolSettings {
            max_connections: 1,
            acquire_timeout: Duration::from_secs(10),
        };
        let database = Database::open(&url, "test", settings, &NO_MIGRATIONS).expect("opened");
        let mut migrated = database.migrated();
        assert!(!migrated.is_done());
        let waiting = tokio::spawn(async move { migrated.wait().await });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "released before the migrations ran");

        database.clone().migrate().await.expect("migrated");
        tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("released once migrated")
            .expect("the waiting task");
        let mut later = database.migrated();
        assert!(later.is_done());
        tokio::time::timeout(Duration::from_secs(10), later.wait())
            .await
            .expect("at once");
    }
}
