//! The background task behind a balanced channel: re-resolves the name,
//! probes each address's gRPC health, and hands the balancer its changes.

use super::{Key, Replicas, Resolve, Settings, endpoint, with_keepalive};
use std::{
    collections::{BTreeSet, HashMap},
    net::SocketAddr,
    sync::{Arc, PoisonError},
    time::Duration,
};
use tokio::{
    sync::{Notify, mpsc::Sender},
    time::Instant,
};
use tonic::transport::{Channel, Endpoint, Uri, channel::Change};

/// A resolution that takes longer is given up for this round.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Early re-checks asked for by failing calls come at most this often.
const MIN_RECHECK_GAP: Duration = Duration::from_millis(200);

/// The background task behind a balanced channel.
pub(super) struct Watcher {
    /// The configured URL: its authority stays the calls' `:authority`.
    pub(super) origin: Uri,
    pub(super) scheme: String,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) settings: Settings,
    pub(super) resolver: Arc<dyn Resolve>,
    pub(super) changes: Sender<Change<Key, Endpoint>>,
    pub(super) recheck: Arc<Notify>,
    /// Where the probes of the last resolution are published, once the
    /// balancer's changes for it are queued.
    pub(super) replicas: Replicas,
    /// Whether the last resolution failed (logged once per outage).
    pub(super) failing: bool,
}

impl Watcher {
    pub(super) async fn run(mut self) {
        // The balancer drops its receiver when the channel's last clone goes.
        let changes = self.changes.clone();
        tokio::select! {
            () = changes.closed() => {}
            () = self.keep_resolving() => {}
        }
        tracing::debug!(host = %self.host, "balanced channel dropped; resolver stopped");
    }

    async fn keep_resolving(&mut self) {
        let mut current = BTreeSet::from([Key::Name]);
        let mut probes = HashMap::new();
        loop {
            let started = Instant::now();
            let wanted = self.round(&mut probes).await;
            let wanted_known = wanted.is_some();
            if let Some(wanted) = wanted.filter(|w| *w != current) {
                // Insert first, so the balancer is never left empty.
                for key in wanted.difference(&current) {
                    if self
                        .changes
                        .send(Change::Insert(*key, self.endpoint(*key)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                for key in current.difference(&wanted) {
                    if self.changes.send(Change::Remove(*key)).await.is_err() {
                        return;
                    }
                }
                let addrs: Vec<String> = wanted
                    .iter()
                    .map(|k| match k {
                        Key::Name => self.host.clone(),
                        Key::Addr(a) => a.to_string(),
                    })
                    .collect();
                tracing::info!(host = %self.host, addresses = ?addrs, "upstream addresses changed");
                current = wanted;
            }
            // Only now, with the balancer's changes queued ahead of any later
            // call: readiness that sees these replicas SERVING must not
            // precede calls reaching them.
            if wanted_known {
                self.publish(probes.values().cloned().collect());
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.resolve_interval) => {}
                () = self.recheck.notified() => {
                    tokio::time::sleep_until(started + MIN_RECHECK_GAP).await;
                }
            }
        }
    }

    /// The entries the balancer should hold now; `None` keeps the current
    /// ones (a failed lookup says nothing about the replicas).
    async fn round(&mut self, probes: &mut HashMap<SocketAddr, Channel>) -> Option<BTreeSet<Key>> {
        let answer = tokio::time::timeout(
            RESOLVE_TIMEOUT,
            self.resolver.resolve(&self.host, self.port),
        )
        .await;
        let resolved: BTreeSet<SocketAddr> = match answer {
            Ok(Ok(addrs)) => addrs.into_iter().collect(),
            Ok(Err(e)) => {
                self.resolution_failed(&e.to_string());
                return None;
            }
            Err(_) => {
                self.resolution_failed("timed out");
                return None;
            }
        };
        if self.failing {
            tracing::info!(host = %self.host, "resolving again");
            self.failing = false;
        }
        probes.retain(|addr, _| resolved.contains(addr));
        if resolved.is_empty() {
            return Some(BTreeSet::from([Key::Name]));
        }
        let limit = self.settings.connect_timeout + Duration::from_secs(1);
        let mut checks = tokio::task::JoinSet::new();
        for addr in &resolved {
            let client = probes
                .entry(*addr)
                .or_insert_with(|| {
                    with_keepalive(
                        Endpoint::from(self.uri(*addr))
                            .connect_timeout(self.settings.connect_timeout),
                        self.settings.keepalive,
                    )
                    .connect_lazy()
                })
                .clone();
            let addr = *addr;
            checks.spawn(async move { (addr, serving(client, limit).await) });
        }
        let mut usable = BTreeSet::new();
        while let Some(checked) = checks.join_next().await {
            if let Ok((addr, true)) = checked {
                usable.insert(addr);
            }
        }
        // None serving: keep them all, so calls fail fast with the real
        // error (or succeed, if the health check was wrong) instead of waiting.
        let chosen = if usable.is_empty() { resolved } else { usable };
        Some(chosen.into_iter().map(Key::Addr).collect())
    }

    fn publish(&self, replicas: Vec<Channel>) {
        *self.replicas.lock().unwrap_or_else(PoisonError::into_inner) = replicas;
    }

    fn resolution_failed(&mut self, error: &str) {
        if !self.failing {
            tracing::warn!(host = %self.host, error, "cannot resolve; keeping the known addresses");
            self.failing = true;
        }
    }

    fn uri(&self, addr: SocketAddr) -> Uri {
        // A socket address (IPv6 in brackets) is always a valid authority.
        Uri::builder()
            .scheme(self.scheme.as_str())
            .authority(addr.to_string())
            .path_and_query("/")
            .build()
            .unwrap_or_else(|_| self.origin.clone())
    }

    fn endpoint(&self, key: Key) -> Endpoint {
        match key {
            Key::Name => endpoint(self.origin.clone(), &self.settings),
            Key::Addr(addr) => endpoint(self.uri(addr), &self.settings).origin(self.origin.clone()),
        }
    }
}

/// Whether the server at the other end of `client` says it serves; one
/// without the health service is taken at its word.
async fn serving(channel: Channel, limit: Duration) -> bool {
    match suite_runtime::probe::check_health(channel, "", limit).await {
        Ok(serving) => serving,
        Err(s) => s.code() == tonic::Code::Unimplemented,
    }
}
