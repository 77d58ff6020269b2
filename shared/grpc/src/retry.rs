//! Calls to a replicated service, retried when that is safe: a read-only
//! call that finds the service Unavailable, or cancelled under it (its
//! connection closed as the replica went away), is sent again after a pause
//! within its deadline. Other calls are sent once: a retry could repeat a
//! write. Whatever the call, a transient failure makes the channel look
//! again at its replicas (see [`Balanced::recheck`]).

use crate::balance::Balanced;
use std::time::{Duration, Instant};
use tonic::{Code, Status};

/// Pauses before the retries: time for the channel to drop the address
/// that failed before the call goes again.
const PAUSES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(300)];

/// Whether a call may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reads: sent again on a transient failure.
    ReadOnly,
    /// Writes: sent once.
    Never,
}

/// Whether a failure is the transport's (a replica down or going away)
/// rather than the service's answer.
pub fn is_transient(status: &Status) -> bool {
    matches!(status.code(), Code::Unavailable | Code::Cancelled)
}

/// Runs `attempt` with the time left before `deadline` (for its
/// `grpc-timeout`), again as the module says. A deadline already passed is
/// DeadlineExceeded without a call.
pub async fn call<T, F, Fut>(
    upstream: &Balanced,
    retry: Retry,
    deadline: Instant,
    mut attempt: F,
) -> Result<T, Status>
where
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut pauses = PAUSES.iter();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Status::deadline_exceeded("the deadline has passed"));
        }
        // A call broken under us is Unavailable like a refused one (see
        // `status::from_transport`), never the service's "internal error".
        match attempt(left).await.map_err(crate::status::from_transport) {
            Err(s) if is_transient(&s) => {
                upstream.recheck();
                match pauses.next() {
                    Some(pause)
                        if retry == Retry::ReadOnly && Instant::now() + *pause < deadline =>
                    {
                        tracing::debug!(code = ?s.code(), "retrying: {}", s.message());
                        tokio::time::sleep(*pause).await;
                    }
                    _ => return Err(s),
                }
            }
            other => return other,
        }
    }
}
