//! Distributed tracing end to end: the three services each run in their own
//! process (this test binary re-run as one service, exactly as its main
//! would run it: `telemetry::init`, serve, flush on SIGTERM), exporting over
//! OTLP/gRPC to an in-process collector. A journey through the gateway must
//! come back as one tree per request across the three services, continuing
//! the client's `traceparent`, with no secret anywhere in spans or logs; a
//! request the client did not sample exports nothing; the metrics endpoints
//! parse as Prometheus text and count the journey.
// The test binary's helpers fail their test loudly too (clippy.toml lets
// #[test] functions do so, and clippy 1.95 does not see these as tests).
#![allow(clippy::expect_used, clippy::panic)]

use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use serde_json::{Value, json};
use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use suite_testkit::otlp::{Collector, attr, hex};

const CHILD_ENV: &str = "SUITE_TELEMETRY_CHILD";
const PASSWORD: &str = "analytical engine 1843";
const WRONG_PASSWORD: &str = "babbage difference engine";

/// Not a test: the entry point of a child process running one service.
/// Run only by `every_request_is_one_trace_across_the_services`.
#[test]
#[ignore = "run as a child process by the telemetry test"]
fn child_service_process() {
    let Ok(which) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        let name = format!("suite-{which}");
        let telemetry = suite_telemetry::init(&name, env!("CARGO_PKG_VERSION")).expect("telemetry");
        let result = match which.as_str() {
            "user" => {
                let config = suite_user::Config::defaults();
                let listener = suite_runtime::listen::bind(config.listen_addr)
                    .await
                    .expect("bind");
                suite_user::serve(config, listener, suite_runtime::shutdown::signal())
                    .await
                    .map_err(|e| e.to_string())
            }
            "auth" => {
                let config = suite_auth::Config::defaults();
                let listener = suite_runtime::listen::bind(config.listen_addr)
                    .await
                    .expect("bind");
                suite_auth::serve(config, listener, suite_runtime::shutdown::signal())
                    .await
                    .map_err(|e| e.to_string())
            }
            _ => {
                let config = suite_gateway::Config::defaults();
                let listener = tokio::net::TcpListener::bind(config.listen_addr)
                    .await
                    .expect("bind");
                suite_gateway::serve(config, listener, suite_runtime::shutdown::signal())
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        telemetry.shutdown().await;
        result.expect("served");
    });
}

fn free_port() -> u16 {
    // Each child binds its port itself, after the parent chose it, so the
    // port must not be one the kernel hands out meanwhile as the local end
    // of someone's connection (the ephemeral range): a port below it is
    // taken only by a listener. Candidates start at a point of this
    // process's own and are checked free by binding.
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (21_000u16, ephemeral_low.max(21_100));
    let span = high - low;
    let start = u16::try_from(std::process::id() % u32::from(span)).unwrap_or(0);
    for _ in 0..span {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed) % span) % span;
        let port = low + offset;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

struct Process {
    child: Child,
    logs: Arc<Mutex<String>>,
}

fn spawn(which: &str, env: &[(&str, String)]) -> Process {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--ignored",
        "--exact",
        "child_service_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, which)
    .env("LOG_FORMAT", "json")
    .env("RUST_LOG", "info")
    .env("OTEL_BSP_SCHEDULE_DELAY", "200")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn");
    let logs = Arc::new(Mutex::new(String::new()));
    for pipe in [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut all = logs.lock().expect("lock");
                all.push_str(&line);
                all.push('\n');
            }
        });
    }
    Process { child, logs }
}

impl Process {
    /// SIGTERM, then wait: the service drains and flushes its spans.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("a service did not stop on SIGTERM");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// `POST path` with a JSON body, under `traceparent` if given.
async fn post(
    gateway: SocketAddr,
    path: &str,
    traceparent: Option<String>,
    body: Value,
) -> (u16, Value) {
    let headers: Vec<_> = traceparent
        .map(|t| ("traceparent", t))
        .into_iter()
        .collect();
    call(gateway, "POST", path, &headers, Some(body)).await
}

/// Ada's login with `password`, under `traceparent`.
async fn login(gateway: SocketAddr, password: &str, traceparent: String) -> (u16, Value) {
    let body = json!({"login": "ada", "password": password});
    post(gateway, "/api/v1/auth/login", Some(traceparent), body).await
}

/// `GET /api/v1/users/me` with `access`, under `traceparent` if given.
async fn get_me(gateway: SocketAddr, access: &str, traceparent: Option<String>) -> (u16, Value) {
    let mut headers = vec![("authorization", format!("Bearer {access}"))];
    headers.extend(traceparent.map(|t| ("traceparent", t)));
    call(gateway, "GET", "/api/v1/users/me", &headers, None).await
}

/// One HTTP/1.1 request (with extra headers) to the gateway.
async fn call(
    gateway: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Option<Value>,
) -> (u16, Value) {
    use http_body_util::Full;
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Full::new(bytes::Bytes::from(b.to_string()))
        }
        None => Full::new(bytes::Bytes::new()),
    };
    let answer = suite_testkit::http::send(gateway, req.body(body).expect("request")).await;
    let bytes = answer.body;
    (
        answer.status,
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
    )
}

/// Prometheus text: every sample as (name with labels, value); fails on a
/// line that is neither a comment nor `name{labels} value`.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            let value: f64 = value.parse().expect("a number");
            assert!(
                series
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_'),
                "{l}"
            );
            (series.to_owned(), value)
        })
        .collect()
}

fn sum(samples: &[(String, f64)], name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| s.split('{').next() == Some(name) && labels.iter().all(|l| s.contains(l)))
        .map(|(_, v)| v)
        .sum()
}

async fn get_text(addr: SocketAddr, path: &str) -> String {
    match call(addr, "GET", path, &[], None).await {
        (200, Value::String(s)) => s,
        other => panic!("{path}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_one_trace_across_the_services() {
    // The collector.
    let received = Collector::default();
    let collector_addr = received.start(None).await;

    let dir = tempfile::tempdir().expect("dir");
    let (user_port, auth_port, gateway_port, quiet_port) =
        (free_port(), free_port(), free_port(), free_port());
    let (user_admin, auth_admin) = (free_port(), free_port());
    let (gateway_admin, quiet_admin) = (free_port(), free_port());
    let user_url = format!("http://127.0.0.1:{user_port}");
    let auth_url = format!("http://127.0.0.1:{auth_port}");
    // The four processes' events meet on a NATS of the test's own.
    let nats = suite_testkit::NatsServer::start();
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let otel = [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
        ("NATS_URL", nats.url()),
    ];
    let with = |extra: Vec<(&'static str, String)>| {
        let mut env: Vec<(&str, String)> = otel.to_vec();
        env.extend(extra);
        env
    };
    let mut user = spawn(
        "user",
        &with(vec![
            ("LISTEN_ADDR", format!("127.0.0.1:{user_port}")),
            ("ADMIN_ADDR", format!("127.0.0.1:{user_admin}")),
            (
                "DATABASE_URL",
                format!("sqlite:{}", dir.path().join("user.db").display()),
            ),
            ("JWKS", format!("grpc://127.0.0.1:{auth_port}")),
            ("PASSWORD_HASH_CONCURRENCY", "2".into()),
        ]),
    );
    let mut auth = spawn(
        "auth",
        &with(vec![
            ("LISTEN_ADDR", format!("127.0.0.1:{auth_port}")),
            ("ADMIN_ADDR", format!("127.0.0.1:{auth_admin}")),
            (
                "DATABASE_URL",
                format!("sqlite:{}", dir.path().join("auth.db").display()),
            ),
            ("DATA_DIR", dir.path().display().to_string()),
            ("USER_SERVICE_URL", user_url.clone()),
        ]),
    );
    let gateway_env = |port: u16, admin: u16| {
        vec![
            ("LISTEN_ADDR", format!("127.0.0.1:{port}")),
            ("ADMIN_ADDR", format!("127.0.0.1:{admin}")),
            ("USER_SERVICE_URL", user_url.clone()),
            ("AUTH_SERVICE_URL", auth_url.clone()),
            ("RATE_LIMIT_BURST", "100000".to_owned()),
            ("AUTH_RATE_LIMIT_BURST", "100000".to_owned()),
        ]
    };
    let mut gateway = spawn("gateway", &with(gateway_env(gateway_port, gateway_admin)));
    // A second gateway that samples nothing.
    let mut quiet_env = with(gateway_env(quiet_port, quiet_admin));
    quiet_env.push(("OTEL_TRACES_SAMPLER", "always_off".into()));
    quiet_env.push(("OTEL_SERVICE_NAME", "suite-gateway-quiet".into()));
    let mut quiet = spawn("gateway", &quiet_env);

    let gw: SocketAddr = format!("127.0.0.1:{gateway_port}").parse().expect("addr");
    let quiet_gw: SocketAddr = format!("127.0.0.1:{quiet_port}").parse().expect("addr");
    let gw_admin: SocketAddr = format!("127.0.0.1:{gateway_admin}").parse().expect("addr");
    let quiet_admin: SocketAddr = format!("127.0.0.1:{quiet_admin}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(60);
    // Readiness is on the gateways' admin ports.
    for addr in [gw_admin, quiet_admin] {
        loop {
            let ready = tokio::net::TcpStream::connect(addr).await.is_ok()
                && call(addr, "GET", "/readyz", &[], None).await.0 == 200;
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "not ready; logs:\n{}\n{}\n{}",
                user.logs.lock().expect("lock"),
                auth.logs.lock().expect("lock"),
                gateway.logs.lock().expect("lock")
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The journey, each request under a trace the client started.
    let traceparent = |n: u8, sampled: bool| {
        let trace = format!("4bf92f3577b34da6a3ce929d0e0e47{n:02x}");
        let parent = format!("00f067aa0ba902{n:02x}");
        let header = format!("00-{trace}-{parent}-{}", if sampled { "01" } else { "00" });
        (trace, parent, header)
    };
    let (created_status, created) = post(
        gw,
        "/api/v1/users",
        None,
        json!({"username": "ada", "email": "ada@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(created_status, 201, "{created}");

    let (login_trace, login_parent, header) = traceparent(1, true);
    let (status, tokens) = login(gw, PASSWORD, header).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["accessToken"].as_str().expect("token").to_owned();
    let refresh = tokens["refreshToken"].as_str().expect("token").to_owned();

    let (get_trace, get_parent, header) = traceparent(2, true);
    let (status, me) = get_me(gw, &access, Some(header)).await;
    assert_eq!(status, 200, "{me}");

    let (wrong_trace, _, header) = traceparent(3, true);
    let (status, problem) = login(gw, WRONG_PASSWORD, header).await;
    assert_eq!(status, 401, "{problem}");
    // The problem names the trace, for bug reports.
    assert_eq!(problem["traceId"], wrong_trace, "{problem}");

    let (status, refreshed) = post(
        gw,
        "/api/v1/auth/refresh",
        None,
        json!({"refreshToken": refresh}),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let new_refresh = refreshed["refreshToken"]
        .as_str()
        .expect("token")
        .to_owned();

    // Not sampled by the client: nothing of it may be exported.
    let (unsampled_trace, _, header) = traceparent(4, false);
    let (status, _) = get_me(gw, &access, Some(header)).await;
    assert_eq!(status, 200);
    // Sampling off at the gateway: nothing exported for it downstream either.
    let (status, _) = get_me(quiet_gw, &access, None).await;
    assert_eq!(status, 200);

    // Logout, under a trace of its own: its event carries the trace, and the
    // access token is refused by both gateways (other processes, told by
    // the event over NATS).
    let (logout_trace, _, header) = traceparent(5, true);
    let (status, _) = post(
        gw,
        "/api/v1/auth/logout",
        Some(header),
        json!({"refreshToken": new_refresh}),
    )
    .await;
    assert_eq!(status, 200);
    // (Asked unsampled: the span counts below stay the journey's.)
    let (_, _, unsampled) = traceparent(6, false);
    for addr in [gw, quiet_gw] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = get_me(addr, &access, Some(unsampled.clone())).await;
            if status == 401 {
                assert_eq!(body["detail"], "access token revoked");
                break;
            }
            assert!(Instant::now() < deadline, "never revoked at {addr}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    // Each event names the trace of the request that caused it.
    let bus = suite_events::EventsArgs {
        nats_url: Some(nats.url()),
        ..suite_events::EventsArgs::default()
    }
    .bus("telemetry-test")
    .await
    .expect("bus");
    let trace_of = |types: &[&str]| {
        let bus = bus.clone();
        let types: Vec<String> = types.iter().map(|t| (*t).to_owned()).collect();
        async move {
            let filter = suite_events::Filter {
                types,
                ..suite_events::Filter::default()
            };
            let mut sub = bus
                .subscribe(filter, suite_events::Start::Since(since))
                .await
                .expect("subscribe");
            let mut traces = Vec::new();
            while let Some(Ok(suite_events::Item::Event { event, .. })) =
                tokio::time::timeout(Duration::from_secs(10), sub.next())
                    .await
                    .expect("in time")
            {
                let tp = event.traceparent.unwrap_or_default();
                traces.push(tp.split('-').nth(1).unwrap_or_default().to_owned());
                if traces.len() == 1 {
                    break;
                }
            }
            traces
        }
    };
    assert_eq!(
        trace_of(&["suite.auth.v1.SessionStarted"]).await,
        std::slice::from_ref(&login_trace)
    );
    assert_eq!(
        trace_of(&["suite.auth.v1.SessionEnded"]).await,
        [logout_trace]
    );
    // Registered without a traceparent: a trace the gateway began.
    let created_trace = trace_of(&["suite.user.v1.UserCreated"]).await;
    assert_eq!(created_trace.len(), 1);
    assert_eq!(created_trace[0].len(), 32, "{created_trace:?}");

    // Metrics: Prometheus text that counts the journey.
    let gateway_metrics = parse_prometheus(&get_text(gw_admin, "/metrics").await);
    assert!(
        sum(
            &gateway_metrics,
            "http_server_request_duration_seconds_count",
            &[
                "http_route=\"/api/v1/auth/login\"",
                "http_response_status_code=\"200\""
            ]
        ) >= 1.0
    );
    assert!(
        sum(
            &gateway_metrics,
            "http_server_request_duration_seconds_count",
            &[
                "http_route=\"/api/v1/auth/login\"",
                "http_response_status_code=\"401\""
            ]
        ) >= 1.0
    );
    let user_admin: SocketAddr = format!("127.0.0.1:{user_admin}").parse().expect("addr");
    let auth_admin: SocketAddr = format!("127.0.0.1:{auth_admin}").parse().expect("addr");
    let user_metrics = parse_prometheus(&get_text(user_admin, "/metrics").await);
    assert!(
        sum(
            &user_metrics,
            "rpc_server_call_duration_seconds_count",
            &["rpc_method=\"VerifyCredentials\""]
        ) >= 2.0
    );
    assert!(sum(&user_metrics, "db_client_connection_count", &[]) >= 1.0);
    assert!(
        user_metrics
            .iter()
            .any(|(s, _)| s.starts_with("suite_password_hash_queue_depth"))
    );
    let auth_metrics = parse_prometheus(&get_text(auth_admin, "/metrics").await);
    assert_eq!(
        sum(
            &auth_metrics,
            "suite_auth_logins_total",
            &["outcome=\"success\""]
        ),
        1.0
    );
    assert_eq!(
        sum(
            &auth_metrics,
            "suite_auth_logins_total",
            &["outcome=\"bad_credentials\""]
        ),
        1.0
    );
    let (status, live) = call(auth_admin, "GET", "/livez", &[], None).await;
    assert_eq!((status, &live["status"]), (200, &json!("ok")));

    // Stop all: each drains and flushes its spans on SIGTERM.
    for p in [&mut quiet, &mut gateway, &mut auth, &mut user] {
        p.stop();
    }
    let spans = received.spans();
    let logs = [&user, &auth, &gateway, &quiet]
        .iter()
        .map(|p| p.logs.lock().expect("lock").clone())
        .collect::<Vec<_>>()
        .join("\n");

    let by_id: HashMap<String, &(String, Span)> =
        spans.iter().map(|s| (hex(&s.1.span_id), s)).collect();
    let parent_of = |s: &Span| by_id.get(&hex(&s.parent_span_id)).copied();
    let in_trace = |trace: &str| -> Vec<&(String, Span)> {
        spans
            .iter()
            .filter(|(_, s)| hex(&s.trace_id) == trace)
            .collect()
    };
    let find = |trace: &str, service: &str, kind: SpanKind, rpc_method: Option<&str>| {
        in_trace(trace)
            .into_iter()
            .find(|(svc, s)| {
                svc == service
                    && s.kind == kind as i32
                    && rpc_method
                        .is_none_or(|m| attr(&s.attributes, "rpc.method").as_deref() == Some(m))
            })
            .map(|(_, s)| s)
            .unwrap_or_else(|| {
                panic!(
                    "no {kind:?} span of {service} ({rpc_method:?}) in trace {trace}; spans: {:#?}",
                    in_trace(trace)
                        .iter()
                        .map(|(svc, s)| (svc, &s.name, s.kind))
                        .collect::<Vec<_>>()
                )
            })
    };
    let service_of = |s: &Span| parent_of(s).map(|(svc, _)| svc.clone());
    // The span of `service` for `rpc_method` in `trace`, a child of `parent`.
    let child = |parent: &Span, trace: &str, service: &str, kind: SpanKind, rpc_method: &str| {
        let span = find(trace, service, kind, Some(rpc_method));
        assert_eq!(
            span.parent_span_id, parent.span_id,
            "the parent of {service}'s {kind:?} span of {rpc_method}"
        );
        span
    };

    // Login: gateway HTTP → gateway client → auth server → auth client → user server → DB.
    let http = find(&login_trace, "suite-gateway", SpanKind::Server, None);
    assert_eq!(
        hex(&http.parent_span_id),
        login_parent,
        "continues the client's span"
    );
    assert_attr(http, "http.route", "/api/v1/auth/login");
    assert_attr(http, "http.request.method", "POST");
    let gw_client = child(
        http,
        &login_trace,
        "suite-gateway",
        SpanKind::Client,
        "Login",
    );
    let auth_server = child(
        gw_client,
        &login_trace,
        "suite-auth",
        SpanKind::Server,
        "Login",
    );
    assert_attr(auth_server, "rpc.system", "grpc");
    let auth_client = find(
        &login_trace,
        "suite-auth",
        SpanKind::Client,
        Some("VerifyCredentials"),
    );
    assert_eq!(service_of(auth_client).as_deref(), Some("suite-auth"));
    let user_server = child(
        auth_client,
        &login_trace,
        "suite-user",
        SpanKind::Server,
        "VerifyCredentials",
    );
    let user_db = in_trace(&login_trace)
        .into_iter()
        .find(|(svc, s)| svc == "suite-user" && attr(&s.attributes, "db.system.name").is_some())
        .map(|(_, s)| s)
        .expect("a user-service database span");
    assert_eq!(user_db.parent_span_id, user_server.span_id);
    assert_attr(user_db, "db.collection.name", "users");
    assert!(
        in_trace(&login_trace)
            .iter()
            .any(|(svc, s)| svc == "suite-auth" && attr(&s.attributes, "db.system.name").is_some()),
        "auth's database spans"
    );
    assert!(
        in_trace(&login_trace)
            .iter()
            .all(|(_, s)| status_code(s) != Some(StatusCode::Error as i32)),
        "a good login has no error span"
    );

    // An authenticated GET: gateway → user, down to the database.
    let http = find(&get_trace, "suite-gateway", SpanKind::Server, None);
    assert_eq!(hex(&http.parent_span_id), get_parent);
    assert_attr(http, "http.route", "/api/v1/users/{id}");
    let client = child(
        http,
        &get_trace,
        "suite-gateway",
        SpanKind::Client,
        "GetUser",
    );
    let server = child(
        client,
        &get_trace,
        "suite-user",
        SpanKind::Server,
        "GetUser",
    );
    assert!(
        in_trace(&get_trace)
            .iter()
            .any(|(svc, s)| svc == "suite-user" && s.parent_span_id == server.span_id),
        "the GET's database span"
    );

    // The wrong password: the client spans are errors; the servers said 16.
    let failed_client = find(
        &wrong_trace,
        "suite-gateway",
        SpanKind::Client,
        Some("Login"),
    );
    assert_eq!(status_code(failed_client), Some(StatusCode::Error as i32));
    let failed_server = find(&wrong_trace, "suite-auth", SpanKind::Server, Some("Login"));
    assert_attr(failed_server, "rpc.grpc.status_code", "16");
    // The credential check itself succeeded: its outcome (invalid) is in
    // its answer, so its span is no error; the login's spans are.
    let verify_client = find(
        &wrong_trace,
        "suite-auth",
        SpanKind::Client,
        Some("VerifyCredentials"),
    );
    assert_eq!(status_code(verify_client), Some(StatusCode::Unset as i32));
    let failed_http = find(&wrong_trace, "suite-gateway", SpanKind::Server, None);
    assert_attr(failed_http, "http.response.status_code", "401");
    // Log lines inside the request name its trace.
    assert!(
        logs.lines()
            .any(|l| l.contains("login failed") && l.contains(&wrong_trace)),
        "the failed login's log line carries its trace id"
    );

    // Sampling: the unsampled request and the quiet gateway export nothing.
    assert!(in_trace(&unsampled_trace).is_empty());
    assert!(spans.iter().all(|(svc, _)| svc != "suite-gateway-quiet"));
    let get_user_servers = spans
        .iter()
        .filter(|(svc, s)| {
            svc == "suite-user"
                && s.kind == SpanKind::Server as i32
                && attr(&s.attributes, "rpc.method").as_deref() == Some("GetUser")
        })
        .count();
    assert_eq!(get_user_servers, 1, "only the sampled GET was exported");

    // No secret anywhere: passwords, tokens, hashes.
    let mut exported = String::new();
    for (svc, s) in &spans {
        exported.push_str(&format!(
            "{svc} {} {:?} {:?}\n",
            s.name, s.attributes, s.events
        ));
    }
    for secret in [
        PASSWORD,
        WRONG_PASSWORD,
        &access,
        &refresh,
        &new_refresh,
        "$argon2",
    ] {
        assert!(
            !exported.contains(secret),
            "a secret in the spans: {secret}"
        );
        assert!(!logs.contains(secret), "a secret in the logs: {secret}");
    }
    // The access token's signature part alone must not leak either.
    let signature = access.rsplit('.').next().expect("jwt");
    assert!(!exported.contains(signature) && !logs.contains(signature));
}

/// The span's attribute `key` is `value`.
fn assert_attr(span: &Span, key: &str, value: &str) {
    assert_eq!(
        attr(&span.attributes, key).as_deref(),
        Some(value),
        "{key} of {}",
        span.name
    );
}

/// The span's status code, if it has a status.
fn status_code(span: &Span) -> Option<i32> {
    span.status.as_ref().map(|st| st.code)
}
