//! Client-side balancing: a gRPC channel over every address a service's name
//! resolves to. gRPC keeps long-lived HTTP/2 connections, so a client of a
//! plain ClusterIP Service sticks to one replica; a headless Service's DNS
//! answers every ready pod, and this channel spreads calls over all of them.
//!
//! A background task re-resolves the name every `resolve_interval` (adding
//! new addresses, dropping removed ones) and checks each address's gRPC
//! health, so that an instance that is gone or draining (NOT_SERVING) gets
//! no new calls even while DNS still lists it. A caller that sees a call fail
//! with Unavailable asks for an early re-check ([`Balanced::recheck`]), so
//! its retry finds the instance already dropped. The task ends by itself
//! when the channel's last clone is dropped.
//!
//! Here the channel and its settings; [`resolve`] turns names into
//! addresses, and the watcher (`watch.rs`) is the background task.

mod resolve;
#[cfg(test)]
mod tests;
mod watch;

pub use resolve::{Dns, Hosts, Resolve, Resolved};

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::sync::Notify;
use tonic::transport::{Channel, Endpoint, Uri, channel::Change};
use watch::Watcher;

/// Changes queued for the balancer (it takes them when a call comes).
const CHANGES_CAPACITY: usize = 64;

/// How a balanced channel connects and how often it looks again.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Wait for a connection this long, then the call is Unavailable.
    pub connect_timeout: Duration,
    /// Upper bound on every call (tonic's `Endpoint::timeout`), if any.
    pub timeout: Option<Duration>,
    /// Re-resolve the name and re-check every address this often.
    pub resolve_interval: Duration,
    /// HTTP/2 pings on every connection, so that a peer that vanished
    /// without a FIN or RST (a dead node, a dropped route) is noticed.
    pub keepalive: Keepalive,
}

/// HTTP/2 keepalive pings of a client connection.
#[derive(Debug, Clone, Copy)]
pub struct Keepalive {
    /// A ping this often, also while no call is in flight.
    pub interval: Duration,
    /// A connection whose ping is not answered this long is closed: its
    /// calls fail Unavailable (and are retried elsewhere), and the next
    /// call reconnects.
    pub timeout: Duration,
}

impl Default for Keepalive {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(20),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InvalidUrl(String);

/// A channel balanced over a service's addresses, and the means to ask its
/// background task for an early re-check. Clones share both.
#[derive(Clone)]
pub struct Balanced {
    channel: Channel,
    recheck: Arc<Notify>,
    /// A channel to each address of the last resolution (the health
    /// probes'), empty before the first answer or for a fixed address.
    replicas: Replicas,
}

type Replicas = Arc<Mutex<Vec<Channel>>>;

impl std::fmt::Debug for Balanced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balanced").finish_non_exhaustive()
    }
}

impl Balanced {
    /// The channel, for a client (cheap: clones share the connections).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Says that a call found the service Unavailable: re-resolve and
    /// re-check now rather than at the next interval, so that a retry does
    /// not meet the same dead address again.
    pub fn recheck(&self) {
        self.recheck.notify_one();
    }

    /// Whether at least one replica answers SERVING for `service` on the
    /// gRPC health protocol, each asked at once within `limit` (for
    /// readiness: one call on the balanced channel would ask whichever
    /// replica it reaches). Before the first resolution, or for a fixed
    /// address, the channel itself is asked.
    pub async fn any_serving(&self, service: &str, limit: Duration) -> bool {
        let replicas = self
            .replicas
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if replicas.is_empty() {
            return matches!(
                suite_runtime::probe::check_health(self.channel(), service, limit).await,
                Ok(true)
            );
        }
        let mut checks = tokio::task::JoinSet::new();
        for channel in replicas {
            let service = service.to_owned();
            checks.spawn(async move {
                matches!(
                    suite_runtime::probe::check_health(channel, &service, limit).await,
                    Ok(true)
                )
            });
        }
        while let Some(checked) = checks.join_next().await {
            if matches!(checked, Ok(true)) {
                return true;
            }
        }
        false
    }
}

/// A lazy channel balanced over every address `url`'s host resolves to
/// (by DNS), kept up to date in a background task.
pub fn channel(url: &str, settings: Settings) -> Result<Balanced, InvalidUrl> {
    channel_with(url, settings, Arc::new(Dns))
}

/// [`channel`] with another resolver. Must be called inside a tokio runtime.
///
/// Nothing connects until the first call, and a service that is down makes
/// calls Unavailable within the connect timeout, never a hang: until the
/// first answer, and whenever the name resolves to no address, the channel
/// holds the name itself (as an unbalanced channel would); when no address
/// passes its health check, all resolved addresses stay in use.
pub fn channel_with(
    url: &str,
    settings: Settings,
    resolver: Arc<dyn Resolve>,
) -> Result<Balanced, InvalidUrl> {
    let uri: Uri = url
        .parse()
        .map_err(|e| InvalidUrl(format!("{url:?}: {e}")))?;
    let scheme = match uri.scheme_str() {
        Some(s @ ("http" | "https")) => s.to_owned(),
        _ => return Err(InvalidUrl(format!("{url:?}: must be http:// or https://"))),
    };
    let host = uri
        .host()
        .ok_or_else(|| InvalidUrl(format!("{url:?}: no host")))?
        .to_owned();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    let recheck = Arc::new(Notify::new());
    let named = endpoint(uri.clone(), &settings);
    // An IP address has nothing to resolve: one endpoint.
    if host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok()
    {
        return Ok(Balanced {
            channel: named.connect_lazy(),
            recheck,
            replicas: Replicas::default(),
        });
    }
    let (channel, changes) = Channel::balance_channel(CHANGES_CAPACITY);
    // Calls before the first answer go to the name.
    changes
        .try_send(Change::Insert(Key::Name, named))
        .map_err(|e| InvalidUrl(format!("{url:?}: {e}")))?;
    let replicas = Replicas::default();
    let watcher = Watcher {
        origin: uri,
        scheme,
        host,
        port,
        settings,
        resolver,
        changes,
        recheck: recheck.clone(),
        replicas: replicas.clone(),
        failing: false,
    };
    tokio::spawn(watcher.run());
    Ok(Balanced {
        channel,
        recheck,
        replicas,
    })
}

fn endpoint(uri: Uri, settings: &Settings) -> Endpoint {
    let endpoint = with_keepalive(
        Endpoint::from(uri).connect_timeout(settings.connect_timeout),
        settings.keepalive,
    );
    match settings.timeout {
        Some(t) => endpoint.timeout(t),
        None => endpoint,
    }
}

fn with_keepalive(endpoint: Endpoint, k: Keepalive) -> Endpoint {
    endpoint
        .http2_keep_alive_interval(k.interval)
        .keep_alive_timeout(k.timeout)
        .keep_alive_while_idle(true)
}

/// An entry of the balancer: one address, or the name itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Name,
    Addr(SocketAddr),
}
