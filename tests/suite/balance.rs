//! Two user-service replicas behind one name, as a headless Service gives
//! them: the gateway spreads calls over both, fails no read when one stops,
//! and fails no request while one is replaced under load.
//!
//! Each replica is the real `suite_user::serve` on its own port, both on one
//! database; "DNS" is a `Hosts` table the gateway resolves with. In front of
//! each replica a TCP relay counts the HTTP/2 requests it carries, so the
//! test sees which replica served how many calls without touching the service.

use crate::helpers::send_with;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};
use suite_grpc::balance::Hosts;
use suite_testkit::{Backend, TestDb};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

const NAME: &str = "suite-user";
const PASSWORD: &str = "analytical engine 1843";

/// Counts HTTP/2 HEADERS frames (one per request) in a client's byte stream.
#[derive(Default)]
struct Frames {
    /// Bytes still to pass before the next frame header (the preface first).
    skip: usize,
    header: [u8; 9],
    have: usize,
    started: bool,
}

impl Frames {
    fn headers_in(&mut self, mut data: &[u8]) -> usize {
        if !self.started {
            self.started = true;
            self.skip = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        }
        let mut count = 0;
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let n = (9 - self.have).min(data.len());
            self.header[self.have..self.have + n].copy_from_slice(&data[..n]);
            self.have += n;
            data = &data[n..];
            if self.have == 9 {
                self.have = 0;
                let h = self.header;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                count += usize::from(h[3] == 0x1);
            }
        }
        count
    }
}

/// A TCP relay in front of one replica, counting the requests it carries.
/// Aborting `accept` closes its port (connections are refused, as when the
/// replica is gone); relayed connections live on until either end closes.
struct Relay {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

async fn relay(backend: SocketAddr) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let accept = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(pipe(client, backend, counter.clone()));
        }
    });
    Relay {
        addr,
        requests,
        accept,
    }
}

async fn pipe(client: TcpStream, backend: SocketAddr, requests: Arc<AtomicUsize>) {
    let Ok(server) = TcpStream::connect(backend).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut frames = Frames::default();
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
            // Counted before the replica can see it, so before any answer.
            requests.fetch_add(frames.headers_in(&buf[..n]), Ordering::SeqCst);
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// One running user-service replica behind its relay.
struct Replica {
    relay: Relay,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), suite_user::StartError>>,
}

impl Replica {
    async fn start(config: suite_user::Config) -> Self {
        Self::start_on(
            TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            config,
        )
        .await
    }

    async fn start_on(listener: TcpListener, config: suite_user::Config) -> Self {
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(suite_user::serve(config, listener, async {
            let _ = stopped.await;
        }));
        wait_serving(addr).await;
        Self {
            relay: relay(addr).await,
            stop: Some(stop),
            task,
        }
    }

    fn requests(&self) -> usize {
        self.relay.requests.load(Ordering::SeqCst)
    }

    /// The stop signal (SIGTERM); the replica drains by its own settings.
    fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits until the replica has stopped, then closes its port.
    async fn stopped(self) {
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the replica stops")
            .expect("task")
            .expect("clean stop");
        self.relay.accept.abort();
    }
}

async fn wait_serving(addr: SocketAddr) {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy();
    let mut client = HealthClient::new(channel);
    for _ in 0..400 {
        let check = client.check(HealthCheckRequest {
            service: String::new(),
        });
        if check.await.is_ok_and(|r| r.into_inner().status == 1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the replica never became SERVING");
}

struct Fixture {
    hosts: Hosts,
    user_config: suite_user::Config,
    gateway: SocketAddr,
    token: String,
    tasks: Vec<JoinHandle<()>>,
    auth_stop: Option<oneshot::Sender<()>>,
    dbs: Vec<TestDb>,
    _dir: tempfile::TempDir,
}

/// Auth, two user replicas on one database, and a gateway whose
/// `USER_SERVICE_URL` names both; a registered user's access token.
async fn fixture(
    backend: Backend,
    resolve_interval_secs: u64,
    drain_delay_secs: u64,
) -> Option<(Fixture, Replica, Replica)> {
    let user_db = TestDb::create(backend, "user").await?;
    let auth_db = TestDb::create(backend, "auth").await?;
    let dir = tempfile::tempdir().expect("dir");
    let auth_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let auth_addr = auth_listener.local_addr().expect("addr");

    let b_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let b_addr = b_listener.local_addr().expect("addr");

    // Auth first: the replicas fetch its keys at start-up.
    let mut auth_config = suite_testkit::hermetic::<suite_auth::Config>();
    auth_config.database_url = auth_db.database_url();
    auth_config.data_dir = dir.path().to_owned();
    // Logins are not what is tested: straight to the replica that stays.
    auth_config.user_service_url = format!("http://{b_addr}");
    let (auth_stop, auth_stopped) = oneshot::channel::<()>();
    let auth_task = tokio::spawn(async move {
        let _ = suite_auth::serve(auth_config, auth_listener, async {
            let _ = auth_stopped.await;
        })
        .await;
    });

    let mut user_config = suite_testkit::hermetic::<suite_user::Config>();
    user_config.database_url = user_db.database_url();
    user_config.keys.jwks = Some(suite_tokens::jwks::JwksSource::grpc(auth_addr));
    user_config.keys.jwks_refresh_min = Duration::from_secs(1);
    user_config.password_hash_concurrency = Some(2);
    user_config.grpc.shutdown_drain_delay = Duration::from_secs(drain_delay_secs);
    // One after the other: the first one migrates.
    let a = Replica::start(user_config.clone()).await;
    let b = Replica::start_on(b_listener, user_config.clone()).await;

    let hosts = Hosts::new();
    hosts.set(NAME, vec![a.relay.addr, b.relay.addr]);
    let mut config = suite_testkit::hermetic::<suite_gateway::Config>();
    config.user_service_url = format!("http://{NAME}:50051");
    config.auth_service_url = format!("http://{auth_addr}");
    config.upstream.upstream_resolve_interval = Duration::from_secs(resolve_interval_secs);
    config.rate_limit_per_second = 100_000;
    config.rate_limit_burst = 100_000;
    config.auth_rate_limit_burst = 10_000;
    let apps = suite_gateway::Builder::new(&config)
        .resolver(Arc::new(hosts.clone()))
        .build()
        .expect("gateway");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gateway = listener.local_addr().expect("addr");
    let admin_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let admin = admin_listener.local_addr().expect("addr");
    let _admin = suite_runtime::admin::spawn_admin_on(admin_listener, apps.admin);
    let router = apps.public;
    let gateway_task = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    // Ready once both services answer health through the gateway's channels
    // (so the first resolution is in).
    let mut ready = false;
    for _ in 0..400 {
        if send_with(admin, "GET", "/readyz", None, None, &[])
            .await
            .is_ok_and(|r| r.status == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready, "the gateway never became ready");

    let post = |path: &'static str, body: serde_json::Value| async move {
        send_with(
            gateway,
            "POST",
            path,
            None,
            Some(("application/json", body.to_string())),
            &[],
        )
        .await
        .expect(path)
    };
    let created = post(
        "/api/v1/users",
        serde_json::json!({ "username": "ada", "email": "ada@example.com", "password": PASSWORD }),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.json);
    let login = post(
        "/api/v1/auth/login",
        serde_json::json!({ "login": "ada", "password": PASSWORD }),
    )
    .await;
    assert_eq!(login.status, 200, "{}", login.json);
    let token = login.json["accessToken"]
        .as_str()
        .expect("access token")
        .to_owned();
    let fixture = Fixture {
        hosts,
        user_config,
        gateway,
        token,
        tasks: vec![auth_task, gateway_task],
        auth_stop: Some(auth_stop),
        dbs: vec![user_db, auth_db],
        _dir: dir,
    };
    Some((fixture, a, b))
}

impl Fixture {
    /// `GET /api/v1/users/me`: status and body (status 0: no HTTP answer).
    async fn get_me(&self) -> (u16, String) {
        get_me(self.gateway, &self.token).await
    }

    async fn finish(mut self, mut replicas: Vec<Replica>) {
        // All at once: each drains by its own settings.
        for replica in &mut replicas {
            replica.signal_stop();
        }
        for replica in replicas {
            replica.stopped().await;
        }
        if let Some(stop) = self.auth_stop.take() {
            let _ = stop.send(());
        }
        for task in self.tasks {
            task.abort();
        }
        for db in &self.dbs {
            db.drop_database().await;
        }
    }
}

async fn get_me(gateway: SocketAddr, token: &str) -> (u16, String) {
    match send_with(gateway, "GET", "/api/v1/users/me", Some(token), None, &[]).await {
        Ok(r) => (r.status, r.json.to_string()),
        Err(e) => (0, e),
    }
}

/// A write the gateway never retries: only the drain keeps it from failing.
async fn patch_me(gateway: SocketAddr, token: &str, n: usize) -> (u16, String) {
    let body = serde_json::json!({ "displayName": format!("Ada {n}") }).to_string();
    let sent = send_with(
        gateway,
        "PATCH",
        "/api/v1/users/me",
        Some(token),
        Some(("application/json", body)),
        &[],
    )
    .await;
    match sent {
        Ok(r) => (r.status, r.json.to_string()),
        Err(e) => (0, e),
    }
}

async fn calls_spread_over_both_replicas_and_no_read_fails_when_one_stops(backend: Backend) {
    // Re-resolving once an hour: when a replica goes, only the re-check a
    // failing call asks for can drop it in time.
    let Some((f, mut a, b)) = fixture(backend, 3600, 0).await else {
        return;
    };
    let (a0, b0) = (a.requests(), b.requests());
    for _ in 0..40 {
        let (status, body) = f.get_me().await;
        assert_eq!(status, 200, "{body}");
    }
    let (on_a, on_b) = (a.requests() - a0, b.requests() - b0);
    assert_eq!(on_a + on_b, 40, "a served {on_a}, b {on_b}");
    assert!(on_a > 0 && on_b > 0, "a served {on_a}, b {on_b}");

    // A stops for good, its address still in "DNS": no read fails.
    a.signal_stop();
    a.stopped().await;
    let b0 = b.requests();
    for _ in 0..40 {
        let (status, body) = f.get_me().await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(b.requests() - b0 >= 40, "b served {}", b.requests() - b0);
    f.finish(vec![b]).await;
}

async fn a_replica_replaced_under_load_fails_no_request(backend: Backend) {
    // As in a rolling update: the gateway re-resolves every second, the
    // replica drains for three after its stop signal.
    let Some((f, mut a, b)) = fixture(backend, 1, 3).await else {
        return;
    };
    let running = Arc::new(AtomicBool::new(true));
    let mut load = Vec::new();
    // Three loops of reads and one of writes.
    for writer in [false, false, false, true] {
        let (running, gateway, token) = (running.clone(), f.gateway, f.token.clone());
        load.push(tokio::spawn(async move {
            let (mut served, mut failed) = (0, Vec::new());
            while running.load(Ordering::SeqCst) {
                let reply = if writer {
                    patch_me(gateway, &token, served).await
                } else {
                    get_me(gateway, &token).await
                };
                match reply {
                    (200, _) => served += 1,
                    other => failed.push(other),
                }
            }
            (served, failed)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    // SIGTERM to A; "DNS" lists it until it is gone (endpoints lag).
    a.signal_stop();
    a.stopped().await;
    let a2 = Replica::start(f.user_config.clone()).await;
    f.hosts.set(NAME, vec![b.relay.addr, a2.relay.addr]);
    // The new replica is found and used (a few resolve intervals).
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while a2.requests() < 10 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new replica got no calls"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.store(false, Ordering::SeqCst);
    let (mut served, mut failed) = (0, Vec::new());
    for task in load {
        let (s, f) = task.await.expect("load task");
        served += s;
        failed.extend(f);
    }
    assert!(failed.is_empty(), "{} failed: {failed:?}", failed.len());
    assert!(served >= 20, "only {served} requests served");
    f.finish(vec![b, a2]).await;
}

suite_testkit::on_both_databases!(suite_testkit::db::backend;
    calls_spread_over_both_replicas_and_no_read_fails_when_one_stops,
    a_replica_replaced_under_load_fails_no_request,
);
