//! Trace export as operators configure it, each case in a child process of
//! its own (this test binary re-run, with the variables a deployment would
//! set) against an in-process OTLP collector:
//! - a plain `tracing` span inside a request lands in the trace under the
//!   request's span, and spans started inside it under it;
//! - export over TLS to a collector whose certificate a private CA signed
//!   (`OTEL_EXPORTER_OTLP_CERTIFICATE`);
//! - OTLP over HTTP/protobuf as well as gRPC;
//! - mutual TLS with `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and `_CLIENT_KEY`;
//! - gzip-compressed batches (`OTEL_EXPORTER_OTLP_COMPRESSION=gzip`);
//! - a collector that answers Unavailable before it accepts loses no batch;
//! - the one-process suite exports each service under its own name.
// The test binary's helpers fail their test loudly too (clippy.toml lets
// #[test] functions do so, and clippy 1.95 does not see these as tests).
#![allow(clippy::expect_used, clippy::panic)]

use opentelemetry::{
    Context,
    trace::{SpanKind, TraceContextExt},
};
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::TraceServiceServer,
    },
    trace::v1::Span,
};
use std::{
    borrow::Cow,
    io::Read as _,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, atomic::Ordering},
    time::{Duration, Instant},
};
use suite_telemetry::spans::Tracer;
use suite_testkit::otlp::{Collector, hex};

const CHILD_ENV: &str = "SUITE_EXPORT_CHILD";
/// Spans the "spans" child makes besides the request's three.
const EXTRA_SPANS: usize = 20;

/// Not a test: the entry point of a child process (see the module docs).
#[test]
#[ignore = "run as a child process by the export tests"]
fn export_child_process() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async move {
        if mode == "suite" {
            run_suite().await;
        } else {
            make_spans().await;
        }
    });
}

/// A request's server span; inside it a contributor's `tracing` span; inside
/// that a client span. Then a few more spans, and the flush.
async fn make_spans() {
    let telemetry =
        suite_telemetry::init("suite-probe", env!("CARGO_PKG_VERSION")).expect("telemetry");
    let server = Tracer::of("suite-probe").start(
        SpanKind::Server,
        &Context::new(),
        || Cow::Borrowed("GET /probe"),
        Vec::new,
    );
    {
        let _request = server.context().clone().attach();
        let work = tracing::info_span!("contributor work", items = 3);
        let _entered = work.enter();
        tracing::info!("inside the contributor's span");
        let inner = suite_telemetry::spans::Span::start(
            SpanKind::Client,
            &Context::current(),
            || Cow::Borrowed("SELECT probes"),
            Vec::new,
        );
        assert!(inner.context().span().span_context().is_valid());
    }
    drop(server);
    for n in 0..EXTRA_SPANS {
        Tracer::of("suite-probe").start(
            SpanKind::Internal,
            &Context::new(),
            || Cow::Owned(format!("extra {n}")),
            Vec::new,
        );
    }
    telemetry.shutdown().await;
    // What became of the spans, for the parent to read.
    for line in suite_telemetry::metrics::metrics().encode().lines() {
        if line.starts_with("suite_otlp_spans_total") {
            println!("METRIC {line}");
        }
    }
}

/// The one-process suite on the ports the parent chose, until SIGTERM.
async fn run_suite() {
    let telemetry =
        suite_telemetry::init_suite("suite", &suite::SERVICES, env!("CARGO_PKG_VERSION"))
            .expect("telemetry");
    let dir = tempfile::tempdir().expect("dir");
    let port =
        |name: &str| -> SocketAddr { std::env::var(name).expect("port").parse().expect("address") };
    let mut config = suite::SuiteConfig::on_free_ports(dir.path().to_owned());
    config.gateway_addr = port("TEST_GATEWAY_ADDR");
    let listeners = suite::Listeners::bind(&config).await.expect("bind");
    let mut user = suite_testkit::hermetic::<suite_user::Config>();
    user.password_hash_concurrency = Some(2);
    suite::run(
        config,
        user,
        suite_testkit::hermetic::<suite_auth::Config>(),
        suite_testkit::hermetic::<suite_gateway::Config>(),
        listeners,
        suite_runtime::shutdown::signal(),
    )
    .await
    .expect("suite");
    telemetry.shutdown().await;
}

/// Runs a child in `mode` with `env`; returns its output once it exits.
fn run_child(mode: &str, env: &[(&str, String)]) -> String {
    let child = child(mode, env);
    let out = child.wait_with_output().expect("child output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "child failed:\n{text}");
    text
}

fn child(mode: &str, env: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args([
        "--ignored",
        "--exact",
        "export_child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, mode)
    .env("LOG_FORMAT", "json")
    .env("RUST_LOG", "info")
    .env("OTEL_BSP_SCHEDULE_DELAY", "100")
    .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    .env_remove("OTEL_SERVICE_NAME")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn")
}

fn find<'a>(spans: &'a [(String, Span)], name: &str) -> &'a Span {
    spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracing_span_lands_under_the_request_span() {
    let collector = Collector::default();
    let addr = collector.start(None).await;
    let logs = run_child(
        "spans",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))],
    );
    let spans = collector.spans();
    let server = find(&spans, "GET /probe");
    let work = find(&spans, "contributor work");
    let inner = find(&spans, "SELECT probes");
    assert_eq!(work.trace_id, server.trace_id);
    assert_eq!(work.parent_span_id, server.span_id, "under the request");
    assert_eq!(inner.parent_span_id, work.span_id, "its children under it");
    assert!(
        spans.iter().all(|(service, _)| service == "suite-probe"),
        "one service name"
    );
    // The log line inside it names its trace and span.
    let line = logs
        .lines()
        .find(|l| l.contains("inside the contributor's span"))
        .expect("the log line");
    assert!(line.contains(&hex(&work.trace_id)), "{line}");
    assert!(line.contains(&hex(&work.span_id)), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_go_over_tls_to_a_collector_signed_by_a_private_ca() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("key");
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("cert");
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write");

    let collector = Collector::default();
    let addr = collector
        .start(Some((server.pem(), server_key.serialize_pem())))
        .await;
    run_child(
        "spans",
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("https://localhost:{}", addr.port()),
            ),
            (
                "OTEL_EXPORTER_OTLP_CERTIFICATE",
                ca_file.display().to_string(),
            ),
        ],
    );
    collector
        .eventually("the spans, over TLS", |s| s.len() >= 3 + EXTRA_SPANS)
        .await;
}

/// A collector that requires a client certificate: refused without one,
/// received with `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` and `_CLIENT_KEY`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_presents_the_client_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let signed = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec![name.to_owned()])
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("cert");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = signed("localhost");
    let (client_cert, client_key) = signed("suite-probe");
    let dir = tempfile::tempdir().expect("dir");
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.display().to_string()
    };
    let ca_file = file("ca.pem", &ca.pem());

    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let tls = tonic::transport::ServerTlsConfig::new()
        .identity(tonic::transport::Identity::from_pem(
            server_cert,
            server_key,
        ))
        .client_ca_root(tonic::transport::Certificate::from_pem(ca.pem()));
    tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(tls)
            .expect("tls")
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let endpoint = format!("https://localhost:{}", addr.port());
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_file),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000".to_owned()),
    ];
    run_child("spans", &env);
    assert!(
        collector.spans().is_empty(),
        "accepted without a client certificate"
    );
    env.push((
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
        file("client.pem", &client_cert),
    ));
    env.push((
        "OTEL_EXPORTER_OTLP_CLIENT_KEY",
        file("client-key.pem", &client_key),
    ));
    run_child("spans", &env);
    collector
        .eventually("the spans, over mutual TLS", |s| s.len() >= 3 + EXTRA_SPANS)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_gzip_compressed_when_asked() {
    let collector = Collector::default();
    let addr = collector.start(None).await;
    run_child(
        "spans",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip".to_owned()),
        ],
    );
    collector
        .eventually("the spans", |s| s.len() >= 3 + EXTRA_SPANS)
        .await;
    let encodings = collector.encodings();
    assert!(
        !encodings.is_empty() && encodings.iter().all(|e| e == "gzip"),
        "{encodings:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_refuses_before_it_accepts_loses_no_span() {
    let collector = Collector::default();
    collector.refuse.store(2, Ordering::SeqCst);
    let addr = collector.start(None).await;
    run_child(
        "spans",
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))],
    );
    collector
        .eventually("every span, after the refusals", |s| {
            s.len() >= 3 + EXTRA_SPANS
        })
        .await;
    assert_eq!(collector.refused.load(Ordering::SeqCst), 2);
    assert_eq!(collector.spans().len(), 3 + EXTRA_SPANS, "none twice");
}

/// OTLP over HTTP/protobuf, to a collector's `/v1/traces`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_go_over_http_protobuf() {
    use prost::Message as _;
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: bytes::Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                for rs in request.resource_spans {
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            sink.lock().expect("lock").push(span.name);
                        }
                    }
                }
                let reply = ExportTraceServiceResponse::default().encode_to_vec();
                ([("content-type", "application/x-protobuf")], reply)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    run_child(
        "spans",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().expect("lock").len() < 3 + EXTRA_SPANS {
        assert!(Instant::now() < deadline, "the spans never came over HTTP");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        received
            .lock()
            .expect("lock")
            .iter()
            .any(|n| n == "contributor work")
    );
}

/// The count of `result` spans the child reported.
fn spans_counted(logs: &str, result: &str) -> u64 {
    logs.lines()
        .filter_map(|l| l.strip_prefix("METRIC "))
        .filter(|l| l.contains(&format!("result=\"{result}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A collector too slow for the spans: the bounded queue drops the excess,
/// every dropped span is counted, and the rest still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_beyond_a_full_queue_are_dropped_and_counted() {
    let collector = Collector::default();
    let addr = collector.start(None).await;
    let logs = run_child(
        "spans",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4".to_owned()),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4".to_owned()),
            // No batch leaves before the queue is full.
            ("OTEL_BSP_SCHEDULE_DELAY", "60000".to_owned()),
        ],
    );
    let (exported, dropped) = (
        spans_counted(&logs, "exported"),
        spans_counted(&logs, "dropped"),
    );
    assert!(dropped > 0, "{logs}");
    assert_eq!(exported + dropped, (3 + EXTRA_SPANS) as u64, "{logs}");
    collector
        .eventually("the admitted spans", |s| s.len() as u64 == exported)
        .await;
    assert!(logs.contains("the span queue is full"), "{logs}");
}

/// The one-process suite: a login's trace shows three services.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_process_suite_exports_each_service_under_its_own_name() {
    let collector = Collector::default();
    let addr = collector.start(None).await;
    let gateway = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut suite = child(
        "suite",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
            ("TEST_GATEWAY_ADDR", gateway.to_string()),
        ],
    );
    let client = reqwest_free::Client { addr: gateway };
    let deadline = Instant::now() + Duration::from_secs(60);
    // Registered once the suite answers.
    loop {
        match client
            .post(
                "/api/v1/users",
                r#"{"username":"olga","email":"olga@example.com","password":"analytical engine 1843"}"#,
            )
            .await
        {
            Some(201) => break,
            other => {
                assert!(Instant::now() < deadline, "the suite never answered: {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let login = client
        .post(
            "/api/v1/auth/login",
            r#"{"login":"olga","password":"analytical engine 1843"}"#,
        )
        .await;
    assert_eq!(login, Some(200));
    collector
        .eventually("a login traced through three services", |spans| {
            let Some((_, root)) = spans
                .iter()
                .find(|(_, s)| s.name == "POST /api/v1/auth/login")
            else {
                return false;
            };
            let services: std::collections::BTreeSet<&str> = spans
                .iter()
                .filter(|(_, s)| s.trace_id == root.trace_id)
                .map(|(service, _)| service.as_str())
                .collect();
            services == ["suite-auth", "suite-gateway", "suite-user"].into()
        })
        .await;
    stop(&mut suite).await;
}

/// A personal access token's secret, used, misused and revoked, appears in
/// no log line (at debug) and no span: only its shown prefix may.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_personal_access_tokens_secret_is_in_no_log_line_or_span() {
    let collector = Collector::default();
    let addr = collector.start(None).await;
    let gateway = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let mut suite = child(
        "suite",
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}")),
            ("TEST_GATEWAY_ADDR", gateway.to_string()),
            ("RUST_LOG", "debug,h2=info,hyper=info,tower=info".to_owned()),
        ],
    );
    // Read as it comes: debug logs would fill the pipes and stall the suite.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(suite.stdout.take().map(|p| Box::new(p) as _));
    let stderr = drain(suite.stderr.take().map(|p| Box::new(p) as _));
    let client = reqwest_free::Client { addr: gateway };
    let deadline = Instant::now() + Duration::from_secs(60);
    let user = loop {
        match client
            .send(
                "POST",
                "/api/v1/users",
                None,
                Some(r#"{"username":"pat","email":"pat@example.com","password":"analytical engine 1843"}"#.to_owned()),
            )
            .await
        {
            Some((201, body)) => break json(&body)["id"].as_str().expect("id").to_owned(),
            other => {
                assert!(Instant::now() < deadline, "the suite never answered: {other:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let login = client
        .send(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(r#"{"login":"pat","password":"analytical engine 1843"}"#.to_owned()),
        )
        .await
        .expect("login");
    let signed_in = json(&login.1)["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let expire = (chrono::Utc::now() + chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let created = client
        .send(
            "POST",
            "/api/v1/auth/tokens",
            Some(&signed_in),
            Some(format!(
                r#"{{"name":"ci","scopes":["user:read"],"expireTime":"{expire}"}}"#
            )),
        )
        .await
        .expect("created");
    assert_eq!(created.0, 201, "{}", created.1);
    let created = json(&created.1);
    let secret = created["secret"].as_str().expect("secret").to_owned();
    let id = created["token"]["id"].as_str().expect("id").to_owned();
    let me = format!("/api/v1/users/{user}");
    for _ in 0..3 {
        assert_eq!(
            client
                .send("GET", &me, Some(&secret), None)
                .await
                .map(|r| r.0),
            Some(200)
        );
    }
    // Misused: beyond its scope, as a refresh token, with a typo.
    let write = client
        .send(
            "PATCH",
            &me,
            Some(&secret),
            Some(r#"{"displayName":"x"}"#.to_owned()),
        )
        .await;
    assert_eq!(write.map(|r| r.0), Some(403));
    let refresh = format!(r#"{{"refreshToken":"{secret}"}}"#);
    let refreshed = client
        .send("POST", "/api/v1/auth/refresh", None, Some(refresh))
        .await;
    assert_eq!(refreshed.map(|r| r.0), Some(401));
    let typo = format!("{}x", &secret[..secret.len() - 1]);
    assert_eq!(
        client
            .send("GET", &me, Some(&typo), None)
            .await
            .map(|r| r.0),
        Some(401)
    );
    let revoked = client
        .send(
            "DELETE",
            &format!("/api/v1/auth/tokens/{id}"),
            Some(&signed_in),
            None,
        )
        .await;
    assert_eq!(revoked.map(|r| r.0), Some(204));
    let deadline = Instant::now() + Duration::from_secs(10);
    while client
        .send("GET", &me, Some(&secret), None)
        .await
        .map(|r| r.0)
        != Some(401)
    {
        assert!(Instant::now() < deadline, "the revoked token still works");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    collector
        .eventually("the exchange and the revocation traced", |spans| {
            let named = |n: &str| spans.iter().any(|(_, s)| s.name.contains(n));
            named("ExchangePersonalAccessToken") && named("DELETE /api/v1/auth/tokens")
        })
        .await;
    stop(&mut suite).await;
    let logs = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    assert!(
        logs.contains("personal access token created"),
        "no debug logs?"
    );
    // The part after the shown prefix is the secret.
    let hidden = &secret[13..];
    assert!(!logs.contains(hidden), "the secret in a log line");
    assert!(
        !logs.contains(&typo[13..]),
        "a presented token in a log line"
    );
    let spans = collector.spans();
    assert!(spans.len() > 10, "{} spans", spans.len());
    for (service, span) in &spans {
        let text = format!("{span:?}");
        assert!(
            !text.contains(hidden),
            "the secret in a span of {service}: {}",
            span.name
        );
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Stops the suite's child process (SIGTERM) and waits, bounded, for it.
async fn stop(suite: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &suite.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while suite.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "the suite did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A minimal HTTP/1.1 client for the gateway.
mod reqwest_free {
    use bytes::Bytes;
    use http_body_util::Full;
    use std::net::SocketAddr;

    pub struct Client {
        pub addr: SocketAddr,
    }

    impl Client {
        /// POSTs JSON; the status, or none if the gateway did not answer.
        pub async fn post(&self, path: &str, body: &'static str) -> Option<u16> {
            let stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .ok()?;
            tokio::spawn(conn);
            let req = http::Request::post(path)
                .header("host", "localhost")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(body.as_bytes())))
                .ok()?;
            let response = sender.send_request(req).await.ok()?;
            Some(response.status().as_u16())
        }

        /// Any request, with a bearer token and a JSON body if given: the
        /// status and the body, or none if the gateway did not answer.
        pub async fn send(
            &self,
            method: &str,
            path: &str,
            token: Option<&str>,
            body: Option<String>,
        ) -> Option<(u16, String)> {
            use http_body_util::BodyExt;
            let stream = tokio::net::TcpStream::connect(self.addr).await.ok()?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .ok()?;
            tokio::spawn(conn);
            let mut req = http::Request::builder()
                .method(method)
                .uri(path)
                .header("host", "localhost")
                .header("content-type", "application/json");
            if let Some(token) = token {
                req = req.header("authorization", format!("Bearer {token}"));
            }
            let req = req
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .ok()?;
            let response = sender.send_request(req).await.ok()?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.ok()?.to_bytes();
            Some((status, String::from_utf8_lossy(&bytes).into_owned()))
        }
    }
}
