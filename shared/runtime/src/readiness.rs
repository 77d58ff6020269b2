//! What a server waits for before it reports itself ready (its database,
//! migrated once, then reachable; the revocations caught up), whatever it
//! serves: the gRPC servers report it on their health service.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

/// A readiness check's future.
pub type Check<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// What a server waits for before it is ready: its database, migrated once
/// (by the first replica to get there; the others find nothing to do), then
/// reachable at every check.
pub trait Readiness: Send + Sync + 'static {
    fn migrate(&self) -> Check<'_>;
    fn ping(&self) -> Check<'_>;
}

/// A check that migrates until that has succeeded once, then pings.
pub fn migrate_then_ping<R: Readiness + ?Sized>(
    readiness: Arc<R>,
) -> impl FnMut() -> Check<'static> + Send + 'static {
    let migrated = Arc::new(AtomicBool::new(false));
    move || {
        let (readiness, migrated) = (readiness.clone(), migrated.clone());
        Box::pin(async move {
            if !migrated.load(Ordering::Relaxed) {
                readiness.migrate().await?;
                migrated.store(true, Ordering::Relaxed);
            }
            readiness.ping().await
        })
    }
}
