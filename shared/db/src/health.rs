//! Fail fast while the database is down. The first call that finds it
//! unreachable marks it down; from then on calls are refused at once (a
//! fast, retryable Unavailable instead of a wait for the pool's acquire
//! timeout per call), while one prober asks the database every
//! [`PROBE_EVERY`] until it answers. Connections opened before the outage
//! are pinged before their next use, so a restarted server's dead
//! connections are replaced instead of failing the first calls after it.
//!
//! The pool itself hides an outage: it retries refused connections until
//! its acquire timeout. So a read that has waited [`SUSPECT_AFTER`] makes
//! one direct connection attempt, outside the pool; if the server cannot be
//! reached, the database is marked down and every read waiting is answered
//! at once.

use crate::pool::Pool;
use std::{
    sync::{Arc, Mutex, Weak},
    time::{Duration, Instant},
};

/// How often the prober asks a database that is down.
pub const PROBE_EVERY: Duration = Duration::from_millis(200);
/// The longest one probe may take (connecting included).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// A read waiting this long makes the database suspect (see the module).
pub const SUSPECT_AFTER: Duration = Duration::from_millis(250);

/// Whether the database is down, and since when it was last seen down.
#[derive(Debug, Default)]
pub struct Outages {
    /// Read by every call: an atomic, not behind the lock.
    down: std::sync::atomic::AtomicBool,
    state: Mutex<OutageState>,
    /// Woken when the database is marked down.
    tripped: tokio::sync::Notify,
    /// A direct connection attempt is under way.
    suspecting: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct OutageState {
    probing: bool,
    /// When the latest outage was noticed: connections older than this may
    /// be dead.
    last: Option<Instant>,
}

impl Outages {
    fn lock(&self) -> std::sync::MutexGuard<'_, OutageState> {
        // The state is two plain fields: a panic elsewhere cannot leave
        // them torn, so a poisoned lock is still good.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn is_down(&self) -> bool {
        self.down.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Whether a connection `age` old was opened before the latest outage
    /// was noticed (so it must be pinged before use).
    pub fn predates_outage(&self, age: Duration) -> bool {
        match self.lock().last {
            Some(at) => age >= at.elapsed(),
            None => false,
        }
    }
}

/// The breaker of one pool.
#[derive(Debug, Clone)]
pub struct Health {
    outages: Arc<Outages>,
    pool: Pool,
}

impl Health {
    pub(crate) fn new(pool: Pool, outages: Arc<Outages>) -> Self {
        Self { outages, pool }
    }

    pub fn is_down(&self) -> bool {
        self.outages.is_down()
    }

    /// Notes that a call met `fault`; marks the database down (and starts
    /// probing it) if the fault says it cannot be reached.
    pub fn saw(&self, fault: crate::Fault) {
        let unreachable = match fault {
            crate::Fault::Unreachable => true,
            // A full pool is load, not an outage; an empty one that could
            // open no connection within the timeout is an outage.
            crate::Fault::PoolTimedOut => self.pool.size() == 0,
            crate::Fault::Overloaded | crate::Fault::Contention => false,
        };
        if !unreachable {
            return;
        }
        let start_probe = {
            let mut s = self.outages.lock();
            if !self
                .outages
                .down
                .swap(true, std::sync::atomic::Ordering::AcqRel)
            {
                tracing::warn!(
                    "the database cannot be reached: calls fail at once until it answers again"
                );
            }
            s.last = Some(Instant::now());
            !std::mem::replace(&mut s.probing, true)
        };
        self.outages.tripped.notify_waiters();
        if start_probe {
            tokio::spawn(probe(self.pool.clone(), Arc::downgrade(&self.outages)));
        }
    }

    /// Completes when the database is marked down; a caller still waiting
    /// after [`SUSPECT_AFTER`] has it checked (see the module).
    pub async fn until_down(&self) {
        let suspicion = tokio::time::sleep(SUSPECT_AFTER);
        tokio::pin!(suspicion);
        let mut suspected = false;
        loop {
            let tripped = self.outages.tripped.notified();
            tokio::pin!(tripped);
            tripped.as_mut().enable();
            if self.is_down() {
                return;
            }
            tokio::select! {
                () = &mut tripped => {}
                () = &mut suspicion, if !suspected => {
                    suspected = true;
                    self.suspect();
                }
            }
        }
    }

    /// One direct connection attempt (at most one at a time), outside the
    /// pool: marks the database down if it cannot be reached.
    fn suspect(&self) {
        use std::sync::atomic::Ordering;
        if self.outages.suspecting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (health, outages) = (self.clone(), Arc::clone(&self.outages));
        tokio::spawn(async move {
            let attempt = tokio::time::timeout(PROBE_TIMEOUT, health.pool.connect_directly()).await;
            let fault = match attempt {
                Ok(Ok(())) => None,
                Ok(Err(e)) => crate::classify(&e),
                // No answer at all: a host gone or a network cut.
                Err(_) => Some(crate::Fault::Unreachable),
            };
            if let Some(fault) = fault {
                health.saw(fault);
            }
            outages.suspecting.store(false, Ordering::Release);
        });
    }
}

/// Pings the database until it answers, then marks it up. Stops if the
/// service that owns the pool is gone.
async fn probe(pool: Pool, outages: Weak<Outages>) {
    loop {
        tokio::time::sleep(PROBE_EVERY).await;
        let Some(outages) = outages.upgrade() else {
            return;
        };
        if let Ok(Ok(())) = tokio::time::timeout(PROBE_TIMEOUT, pool.ping()).await {
            let mut s = outages.lock();
            outages
                .down
                .store(false, std::sync::atomic::Ordering::Release);
            s.probing = false;
            tracing::info!("the database answers again");
            return;
        }
    }
}
