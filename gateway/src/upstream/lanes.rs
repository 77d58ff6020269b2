//! Connections of their own for a service's event streams. A stream lasts
//! (until its token ends), and an HTTP/2 connection carries only so many
//! streams at once (the service's `GRPC_MAX_CONCURRENT_STREAMS`, 200): on
//! the connection the other calls take, a couple of hundred open event
//! streams would leave no room for a single `GET`, which would then wait
//! out its budget (504) for everyone. So streams never ride on the calls'
//! channel: each goes to the least loaded of its own channels, opened as
//! needed, each carrying at most `EVENT_STREAMS_PER_CONNECTION`.

use std::sync::{
    Arc, Mutex, PoisonError,
    atomic::{AtomicUsize, Ordering},
};
use suite_grpc::balance::{Balanced, InvalidUrl};

/// Opens one more channel to the service (lazily connected, balanced over
/// its replicas as the calls' channel is).
pub type Open = Box<dyn Fn() -> Result<Balanced, InvalidUrl> + Send + Sync>;

/// The stream channels of one service.
pub struct Lanes {
    open: Open,
    per_connection: usize,
    lanes: Mutex<Vec<Lane>>,
}

struct Lane {
    channel: Balanced,
    streams: Arc<AtomicUsize>,
}

/// A stream's place on a lane: the channel to call on, counted until dropped.
pub struct Ticket {
    pub channel: Balanced,
    streams: Arc<AtomicUsize>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("per_connection", &self.per_connection)
            .field("lanes", &self.counts())
            .finish_non_exhaustive()
    }
}

impl Lanes {
    pub fn new(open: Open, per_connection: usize) -> Self {
        Self {
            open,
            per_connection: per_connection.max(1),
            lanes: Mutex::default(),
        }
    }

    /// A place for one more stream: on the least loaded lane with room, or
    /// on a new lane when every lane is full. (The gateway's stream limit
    /// bounds how many lanes that can make.)
    pub fn take(&self) -> Result<Ticket, InvalidUrl> {
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let least = lanes
            .iter()
            .enumerate()
            .map(|(i, l)| (i, l.streams.load(Ordering::Acquire)))
            .min_by_key(|&(_, streams)| streams)
            .filter(|&(_, streams)| streams < self.per_connection);
        let index = match least {
            Some((i, _)) => i,
            None => {
                lanes.push(Lane {
                    channel: (self.open)()?,
                    streams: Arc::default(),
                });
                tracing::debug!(lanes = lanes.len(), "another connection for event streams");
                lanes.len() - 1
            }
        };
        let lane = &lanes[index];
        lane.streams.fetch_add(1, Ordering::AcqRel);
        Ok(Ticket {
            channel: lane.channel.clone(),
            streams: lane.streams.clone(),
        })
    }

    /// The streams on each lane.
    pub fn counts(&self) -> Vec<usize> {
        self.lanes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|l| l.streams.load(Ordering::Acquire))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(per_connection: usize) -> Lanes {
        Lanes::new(
            Box::new(|| {
                suite_grpc::balance::channel_with(
                    "http://127.0.0.1:1",
                    suite_grpc::balance::Settings {
                        connect_timeout: std::time::Duration::from_secs(1),
                        timeout: None,
                        resolve_interval: std::time::Duration::from_secs(30),
                        keepalive: suite_grpc::balance::Keepalive::default(),
                    },
                    Arc::new(suite_grpc::balance::Dns),
                )
            }),
            per_connection,
        )
    }

    #[tokio::test]
    async fn streams_fill_lanes_up_to_their_share_and_open_more_only_when_full() {
        let lanes = lanes(2);
        let a = lanes.take().expect("first");
        let b = lanes.take().expect("second");
        assert_eq!(lanes.counts(), vec![2]);
        let c = lanes.take().expect("third");
        assert_eq!(lanes.counts(), vec![2, 1]);
        drop(a);
        // The least loaded lane with room takes the next.
        let _d = lanes.take().expect("fourth");
        assert_eq!(lanes.counts().iter().sum::<usize>(), 3);
        assert_eq!(lanes.counts().len(), 2, "no lane opened while one has room");
        drop((b, c));
    }
}
