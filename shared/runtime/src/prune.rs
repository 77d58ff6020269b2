//! Deleting what can never matter again, for as long as a service runs.

use std::{fmt::Display, future::Future, time::Duration};

/// Runs `prune` every `period` (the first time one period after the start)
/// until its task is dropped, logging how many rows of `what` it deleted.
/// Every replica does it, since the deletes are idempotent; a failure is
/// logged and tried again the next period.
pub async fn every<F, Fut, E>(period: Duration, what: &'static str, prune: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u64, E>>,
    E: Display,
{
    loop {
        tokio::time::sleep(period).await;
        match prune().await {
            Ok(rows) => tracing::info!(rows, what, "pruned"),
            Err(e) => tracing::warn!(error = %e, what, "pruning failed; will retry"),
        }
    }
}
