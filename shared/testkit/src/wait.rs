//! The one bounded wait on a condition, for tests that must wait for
//! something another task or process does.

use std::time::{Duration, Instant};

/// How often a condition is checked again.
const POLL: Duration = Duration::from_millis(10);

/// Checks `condition` until it holds, failing the test (naming `what`) if it
/// does not within `patience`.
pub async fn eventually(what: &str, patience: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + patience;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {patience:?}: {what}");
        tokio::time::sleep(POLL).await;
    }
}
