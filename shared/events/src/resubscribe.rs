//! Following the events for as long as a task runs. A subscription that
//! breaks, or cannot start, is made again after a [`Backoff`], from a second
//! before the last event it delivered, so that nothing published meanwhile
//! is missed: a handler sees some events twice and must not mind.

use crate::{Bus, Filter, Item, Start};
use std::time::Duration;

/// The pause before trying again: from 100 ms, doubled at each failure in
/// a row up to 5 s, and back to 100 ms once something gets through.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MOST: Duration = Duration::from_secs(5);

    /// Something got through: the next failure waits the least again.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }

    /// Waits before the next attempt, longer each time until a [`reset`](Self::reset).
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Self::MOST);
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

/// Hands every item of `filter`, from `start` on, to `handle`, one at a
/// time, resubscribing whenever the subscription breaks; never returns
/// (the task that runs it is dropped or aborted). `what` names the events
/// in the logs.
pub async fn follow<H, F>(bus: &Bus, filter: Filter, start: Start, what: &str, mut handle: H)
where
    H: FnMut(Item) -> F,
    F: Future<Output = ()>,
{
    let mut from = start;
    let mut backoff = Backoff::default();
    loop {
        match bus.subscribe(filter.clone(), from.clone()).await {
            Ok(mut subscription) => {
                while let Some(item) = subscription.next().await {
                    match item {
                        Ok(item) => {
                            let published = match &item {
                                Item::Event { published, .. } => Some(*published),
                                Item::CaughtUp => None,
                            };
                            handle(item).await;
                            if let Some(published) = published {
                                from = Start::Since(published - chrono::Duration::seconds(1));
                                backoff.reset();
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "{what} broke off; resubscribing");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to {what}; retrying"),
        }
        backoff.wait().await;
    }
}
