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

use std::{
    collections::{BTreeSet, HashMap},
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};
use tokio::{
    sync::{Notify, mpsc::Sender},
    time::Instant,
};
use tonic::transport::{Channel, Endpoint, Uri, channel::Change};

/// Changes queued for the balancer (it takes them when a call comes).
const CHANGES_CAPACITY: usize = 64;
/// A resolution that takes longer is given up for this round.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Early re-checks asked for by failing calls come at most this often.
const MIN_RECHECK_GAP: Duration = Duration::from_millis(200);

/// What a resolver answers.
pub type Resolved = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Turns a host name and port into socket addresses: DNS in production,
/// a table in tests.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self, host: &str, port: u16) -> Resolved;
}

/// The system resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct Dns;

impl Resolve for Dns {
    fn resolve(&self, host: &str, port: u16) -> Resolved {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }
}

/// Names with fixed addresses that can be changed at run time (tests stand
/// in for DNS with it); an unknown name is an error, as NXDOMAIN would be.
#[derive(Debug, Clone, Default)]
pub struct Hosts(Arc<Mutex<HashMap<String, Vec<SocketAddr>>>>);

impl Hosts {
    pub fn new() -> Self {
        Self::default()
    }

    /// What `host` resolves to from now on.
    pub fn set(&self, host: &str, addrs: Vec<SocketAddr>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_owned(), addrs);
    }
}

impl Resolve for Hosts {
    fn resolve(&self, host: &str, _port: u16) -> Resolved {
        let found = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no host {host}")));
        Box::pin(std::future::ready(found))
    }
}

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
                crate::health::check_health(self.channel(), service, limit).await,
                Ok(true)
            );
        }
        let mut checks = tokio::task::JoinSet::new();
        for channel in replicas {
            let service = service.to_owned();
            checks.spawn(async move {
                matches!(
                    crate::health::check_health(channel, &service, limit).await,
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
    // Calls before the first answer go to the name, as they always did.
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

/// The background task behind a balanced channel.
struct Watcher {
    /// The configured URL: its authority stays the calls' `:authority`.
    origin: Uri,
    scheme: String,
    host: String,
    port: u16,
    settings: Settings,
    resolver: Arc<dyn Resolve>,
    changes: Sender<Change<Key, Endpoint>>,
    recheck: Arc<Notify>,
    /// Where the probes of the last resolution are published, once the
    /// balancer's changes for it are queued.
    replicas: Replicas,
    /// Whether the last resolution failed (logged once per outage).
    failing: bool,
}

impl Watcher {
    async fn run(mut self) {
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
    match crate::health::check_health(channel, "", limit).await {
        Ok(serving) => serving,
        Err(s) => s.code() == tonic::Code::Unimplemented,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use tokio::{net::TcpListener, sync::oneshot};
    use tonic::Code;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use tonic_health::server::HealthReporter;

    /// A real gRPC server with only the health service, which reports its
    /// own `name` as SERVING: a check for that name says who answered.
    struct Instance {
        addr: SocketAddr,
        health: HealthReporter,
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<()>,
    }

    async fn instance(name: &'static str) -> Instance {
        let (health, service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        health
            .set_service_status(name, tonic_health::ServingStatus::Serving)
            .await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(crate::server::incoming(listener), async {
                    let _ = stopped.await;
                })
                .await;
        });
        Instance {
            addr,
            health,
            stop,
            task,
        }
    }

    impl Instance {
        async fn stop(self) {
            let _ = self.stop.send(());
            tokio::time::timeout(Duration::from_secs(5), self.task)
                .await
                .expect("stops")
                .expect("cleanly");
        }
    }

    /// An address nothing listens on.
    async fn closed_port() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr")
    }

    fn settings(resolve_interval: Duration) -> Settings {
        Settings {
            connect_timeout: Duration::from_millis(500),
            timeout: None,
            resolve_interval,
            keepalive: Keepalive::default(),
        }
    }

    /// Which instance answered a call checking `"a"`: `Ok(true)` for a,
    /// `Ok(false)` for another one, `Err` for a failed call.
    async fn who(balanced: &Balanced) -> Result<bool, tonic::Status> {
        let mut client = HealthClient::new(balanced.channel());
        match client
            .check(HealthCheckRequest {
                service: "a".into(),
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == Code::NotFound => Ok(false),
            Err(s) => Err(s),
        }
    }

    /// Calls until `n` answers in a row satisfy `ok` (the channel has caught up), or panics.
    async fn until_settled(balanced: &Balanced, n: usize, ok: impl Fn(bool) -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut in_a_row = 0;
        while in_a_row < n {
            assert!(std::time::Instant::now() < deadline, "never settled");
            match who(balanced).await {
                Ok(a) if ok(a) => in_a_row += 1,
                _ => {
                    in_a_row = 0;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    #[tokio::test]
    async fn calls_spread_over_every_resolved_address_and_follow_new_answers() {
        let (a, b) = (instance("a").await, instance("b").await);
        let hosts = Hosts::new();
        hosts.set("svc", vec![a.addr, b.addr]);
        let balanced = channel_with(
            "http://svc:50051",
            settings(Duration::from_millis(100)),
            Arc::new(hosts.clone()),
        )
        .expect("channel");
        // Once both addresses are in, both serve calls.
        until_settled(&balanced, 1, |_| true).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut on_a = 0;
        for _ in 0..40 {
            on_a += usize::from(who(&balanced).await.expect("call"));
        }
        assert!((1..40).contains(&on_a), "a served {on_a} of 40");

        // An address gone from the answer gets no more calls ...
        hosts.set("svc", vec![b.addr]);
        until_settled(&balanced, 20, |a| !a).await;
        // ... and a new one is used.
        hosts.set("svc", vec![a.addr, b.addr]);
        until_settled(&balanced, 1, |a| a).await;
        a.stop().await;
        b.stop().await;
    }

    #[tokio::test]
    async fn an_instance_that_stops_serving_gets_no_calls_while_dns_still_lists_it() {
        let (a, b) = (instance("a").await, instance("b").await);
        let hosts = Hosts::new();
        hosts.set("svc", vec![a.addr, b.addr]);
        let balanced = channel_with(
            "http://svc:50051",
            settings(Duration::from_millis(100)),
            Arc::new(hosts),
        )
        .expect("channel");
        until_settled(&balanced, 1, |a| a).await;
        // Draining: NOT_SERVING, still answering.
        a.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        until_settled(&balanced, 30, |a| !a).await;
        a.stop().await;
        b.stop().await;
    }

    #[tokio::test]
    async fn after_a_recheck_an_instance_that_went_away_gets_no_more_calls() {
        let (a, b) = (instance("a").await, instance("b").await);
        let hosts = Hosts::new();
        hosts.set("svc", vec![a.addr, b.addr]);
        // Re-resolving once an hour: only the recheck can drop it in time.
        let balanced = channel_with(
            "http://svc:50051",
            settings(Duration::from_secs(3600)),
            Arc::new(hosts),
        )
        .expect("channel");
        until_settled(&balanced, 1, |a| a).await;
        until_settled(&balanced, 1, |a| !a).await;
        a.stop().await;
        balanced.recheck();
        tokio::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..30 {
            assert!(!who(&balanced).await.expect("served by b"), "served by a");
        }
        b.stop().await;
    }

    /// A call on `balanced`, which must fail Unavailable well within a few
    /// connect timeouts (never hang).
    async fn unavailable_quickly(balanced: &Balanced) {
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(5), who(balanced))
            .await
            .expect("no hang");
        let status = result.expect_err("nothing serves");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_name_with_no_address_is_unavailable_quickly() {
        let closed = closed_port().await;
        let hosts = Hosts::new();
        hosts.set("localhost", vec![]);
        let url = format!("http://localhost:{}", closed.port());
        let balanced = channel_with(&url, settings(Duration::from_millis(50)), Arc::new(hosts))
            .expect("channel");
        for _ in 0..3 {
            unavailable_quickly(&balanced).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A name that does not resolve at all: the same.
        let balanced = channel_with(
            "http://unknown:50051",
            settings(Duration::from_millis(50)),
            Arc::new(Hosts::new()),
        )
        .expect("channel");
        unavailable_quickly(&balanced).await;
    }

    #[tokio::test]
    async fn addresses_that_all_refuse_are_unavailable_quickly() {
        let hosts = Hosts::new();
        hosts.set("svc", vec![closed_port().await, closed_port().await]);
        let balanced = channel_with(
            "http://svc:50051",
            settings(Duration::from_millis(50)),
            Arc::new(hosts),
        )
        .expect("channel");
        for _ in 0..5 {
            unavailable_quickly(&balanced).await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // An IP literal is one plain endpoint: the same.
        let url = format!("http://{}", closed_port().await);
        let balanced = channel(&url, settings(Duration::from_secs(10))).expect("channel");
        unavailable_quickly(&balanced).await;
    }

    /// Counts the lookups it answers (with no address).
    struct Counting(Arc<AtomicUsize>);

    impl Resolve for Counting {
        fn resolve(&self, _: &str, _: u16) -> Resolved {
            self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(std::future::ready(Ok(Vec::new())))
        }
    }

    #[tokio::test]
    async fn the_background_task_ends_with_the_last_clone_of_the_channel() {
        let lookups = Arc::new(AtomicUsize::new(0));
        let balanced = channel_with(
            "http://svc:50051",
            settings(Duration::from_millis(10)),
            Arc::new(Counting(lookups.clone())),
        )
        .expect("channel");
        let clone = balanced.clone();
        drop(balanced);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(lookups.load(Ordering::SeqCst) > 1, "still resolving");
        drop(clone);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let after_drop = lookups.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(lookups.load(Ordering::SeqCst), after_drop);
    }

    #[tokio::test]
    async fn ready_while_one_replica_serves_whichever_replica_a_call_would_reach() {
        let (a, b) = (instance("a").await, instance("b").await);
        let hosts = Hosts::new();
        hosts.set("svc", vec![a.addr, b.addr]);
        let balanced = channel_with(
            "http://svc:50051",
            settings(Duration::from_millis(50)),
            Arc::new(hosts),
        )
        .expect("channel");
        until_settled(&balanced, 1, |a| a).await;
        // Only a knows "a": every check says so, wherever a call would go.
        for _ in 0..20 {
            assert!(balanced.any_serving("a", Duration::from_secs(2)).await);
        }
        a.health
            .set_service_status("a", tonic_health::ServingStatus::NotServing)
            .await;
        assert!(!balanced.any_serving("a", Duration::from_secs(2)).await);
        assert!(balanced.any_serving("b", Duration::from_secs(2)).await);
        a.stop().await;
        b.stop().await;
    }

    /// Readiness must not run ahead of the balancer: while a resolution is
    /// still waiting on a replica that never answers, a replica already seen
    /// SERVING is not reported until calls can reach it.
    #[tokio::test]
    async fn a_replica_readiness_reports_is_one_a_call_reaches() {
        let a = instance("a").await;
        // Accepts connections and never answers: its health check waits for
        // the limit, holding up the round.
        let silent = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let silent_addr = silent.local_addr().expect("addr");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let hosts = Hosts::new();
        hosts.set("svc", vec![a.addr, silent_addr]);
        let balanced = channel_with(
            "http://svc:50051",
            settings(Duration::from_secs(3600)),
            Arc::new(hosts),
        )
        .expect("channel");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !balanced.any_serving("a", Duration::from_millis(200)).await {
            assert!(std::time::Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            who(&balanced).await.ok(),
            Some(true),
            "ready, but the call failed"
        );
        a.stop().await;
    }

    /// A TCP proxy to `target` that forwards until frozen, then holds its
    /// sockets open and passes nothing: a peer that vanished without a FIN
    /// or RST, as a dead node or a dropped route looks.
    async fn freezing_proxy(target: SocketAddr) -> (SocketAddr, Arc<AtomicBool>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let frozen = Arc::new(AtomicBool::new(false));
        let flag = frozen.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                for (mut from, mut to) in [(ri, wo), (ro, wi)] {
                    let flag = flag.clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n @ 1..) = from.read(&mut buf).await {
                            if flag.load(Ordering::SeqCst) {
                                // Keep both halves, answer nothing.
                                std::future::pending::<()>().await;
                            }
                            if to.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            }
        });
        (addr, frozen)
    }

    #[tokio::test]
    async fn a_call_to_a_peer_that_vanished_fails_instead_of_hanging() {
        let a = instance("a").await;
        let (proxy, frozen) = freezing_proxy(a.addr).await;
        let mut s = settings(Duration::from_secs(10));
        s.keepalive = Keepalive {
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(300),
        };
        // Neither a deadline nor a call timeout: only the pings can tell.
        let balanced = channel(&format!("http://{proxy}"), s).expect("channel");
        assert!(who(&balanced).await.expect("call through the proxy"));
        frozen.store(true, Ordering::SeqCst);
        let ended = tokio::time::timeout(Duration::from_secs(30), who(&balanced)).await;
        let status = ended
            .expect("the call hung: the dead connection went unnoticed")
            .expect_err("a frozen peer cannot answer");
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        // Not a graceful stop: the frozen proxy holds a connection open.
        a.task.abort();
    }

    #[test]
    fn urls_without_a_host_or_with_another_scheme_are_refused() {
        let s = settings(Duration::from_secs(1));
        assert!(channel("suite-user:50051", s).is_err());
        assert!(channel("ftp://suite-user:50051", s).is_err());
        assert!(channel("not a url", s).is_err());
    }
}
