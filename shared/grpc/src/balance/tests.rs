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

/// A channel to "svc", the name listing `addrs` and looked up again every
/// `resolve_interval`; and the hosts that answer it, to change the answer.
fn balanced_over(addrs: Vec<SocketAddr>, resolve_interval: Duration) -> (Hosts, Balanced) {
    let hosts = Hosts::new();
    hosts.set("svc", addrs);
    let balanced = channel_with(
        "http://svc:50051",
        settings(resolve_interval),
        Arc::new(hosts.clone()),
    )
    .expect("channel");
    (hosts, balanced)
}

#[tokio::test]
async fn calls_spread_over_every_resolved_address_and_follow_new_answers() {
    let (a, b) = (instance("a").await, instance("b").await);
    let (hosts, balanced) = balanced_over(vec![a.addr, b.addr], Duration::from_millis(100));
    // Once both addresses are in, both serve calls.
    until_settled(&balanced, 1, |a| a).await;
    until_settled(&balanced, 1, |a| !a).await;
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
    let (_, balanced) = balanced_over(vec![a.addr, b.addr], Duration::from_millis(100));
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
    // Re-resolving once an hour: only the recheck can drop it in time.
    let (_, balanced) = balanced_over(vec![a.addr, b.addr], Duration::from_secs(3600));
    until_settled(&balanced, 1, |a| a).await;
    until_settled(&balanced, 1, |a| !a).await;
    a.stop().await;
    balanced.recheck();
    // The recheck runs in the background: calls may fail until it is done.
    until_settled(&balanced, 30, |a| !a).await;
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
    let balanced =
        channel_with(&url, settings(Duration::from_millis(50)), Arc::new(hosts)).expect("channel");
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
    let (_, balanced) = balanced_over(
        vec![closed_port().await, closed_port().await],
        Duration::from_millis(50),
    );
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
    // One clone left: the task still resolves.
    eventually(|| lookups.load(Ordering::SeqCst) > 1, "still resolving").await;
    drop(clone);
    // The task ends, dropping the resolver and with it its count's last
    // other owner.
    eventually(|| Arc::strong_count(&lookups) == 1, "the task ended").await;
}

/// Waits (10 s at most) until `done` holds.
async fn eventually(done: impl Fn() -> bool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn ready_while_one_replica_serves_whichever_replica_a_call_would_reach() {
    let (a, b) = (instance("a").await, instance("b").await);
    let (_, balanced) = balanced_over(vec![a.addr, b.addr], Duration::from_millis(50));
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
    let (_, balanced) = balanced_over(vec![a.addr, silent_addr], Duration::from_secs(3600));
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
