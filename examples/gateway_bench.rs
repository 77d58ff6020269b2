//! The gateway's cost, measured side by side in one run (see BENCHMARKS.md):
//! 1. `GET /api/health` through the gateway (the ceiling: HTTP only);
//! 2. authenticated `GET /api/v1/users/{id}` through the gateway (HTTP →
//!    token check → transcoding → gRPC → user service → SQLite);
//! 3. the same `GetUser` called directly over gRPC.
//!
//! Client and servers share the machine's cores, the same for all three.
//! When `wrk` (Debian's package) is installed, the two HTTP measurements are
//! repeated with it, as an independent generator, in the same run.
//! `cargo run --release --example gateway_bench [-- <seconds> <connections>]`
//!
//! `cargo build --release && cargo run --release --example gateway_bench -- tracing [<seconds> <connections>]`
//! measures the cost of tracing instead: the `suite` binary (release) run
//! twice, without and with OTLP export to a collector in this process, under
//! the same authenticated `GET /api/v1/users/{id}` load.

#[path = "common/http.rs"]
mod http_client;

use bytes::Bytes;
use http_client::{call, connect};
use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};
use suite_proto::user::{GetUserRequest, user_service_client::UserServiceClient};
use tokio::sync::Mutex;

struct Stats {
    ok: u64,
    latencies: Vec<Duration>,
}

fn report(name: &str, stats: &mut Stats, seconds: u64) -> f64 {
    stats.latencies.sort();
    let pct = |p: f64| {
        stats
            .latencies
            .get(
                ((stats.latencies.len() as f64 * p) as usize)
                    .min(stats.latencies.len().saturating_sub(1)),
            )
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let rps = stats.ok as f64 / seconds as f64;
    println!(
        "{name:<52} {rps:>9.0} req/s   p50 {:>6.3} ms   p99 {:>6.3} ms",
        pct(0.5),
        pct(0.99)
    );
    rps
}

async fn http_load(
    addr: SocketAddr,
    path: String,
    token: Option<String>,
    connections: usize,
    window: Duration,
) -> Result<Stats, Box<dyn std::error::Error + Send + Sync>> {
    let all = Arc::new(Mutex::new(Stats {
        ok: 0,
        latencies: Vec::new(),
    }));
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (path, token, all) = (path.clone(), token.clone(), all.clone());
        let mut sender = connect(addr).await?;
        tasks.push(tokio::spawn(async move {
            let mut mine = Stats {
                ok: 0,
                latencies: Vec::new(),
            };
            while Instant::now() < deadline {
                let start = Instant::now();
                if let Ok((200, _)) = call(&mut sender, "GET", &path, token.as_deref(), None).await
                {
                    mine.ok += 1;
                    mine.latencies.push(start.elapsed());
                }
            }
            let mut all = all.lock().await;
            all.ok += mine.ok;
            all.latencies.extend(mine.latencies);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let stats = std::mem::replace(
        &mut *all.lock().await,
        Stats {
            ok: 0,
            latencies: Vec::new(),
        },
    );
    Ok(stats)
}

/// The same HTTP load from wrk, if installed: its req/s, p50 and p99 lines.
fn wrk(addr: SocketAddr, path: &str, token: Option<&str>, connections: usize, seconds: u64) {
    let mut cmd = std::process::Command::new("wrk");
    cmd.args([
        // wrk needs at least one connection per thread.
        &format!("-t{}", connections.clamp(1, 2)),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    cmd.arg(format!("http://{addr}{path}"));
    let Ok(out) = cmd.output() else {
        println!("  (wrk not installed: apt-get install wrk)");
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let pick = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(|l| l.split_whitespace().last().unwrap_or("").to_owned())
            .unwrap_or_default()
    };
    let non_2xx = pick("Non-2xx");
    println!(
        "  wrk: {} req/s   p50 {}   p99 {}{}",
        pick("Requests/sec:"),
        pick("50%"),
        pick("99%"),
        if non_2xx.is_empty() {
            String::new()
        } else {
            format!("   non-2xx: {non_2xx}")
        }
    );
}

/// A collector that keeps each export's resource spans undecoded (decoding
/// them here would bill the collector's work to the traced side); they are
/// counted after the runs.
#[derive(Clone, Default)]
struct Collector(Arc<std::sync::Mutex<Vec<Bytes>>>);

/// ExportTraceServiceRequest, its one field left as raw bytes.
#[derive(Clone, PartialEq, prost::Message)]
struct RawExport {
    #[prost(bytes = "bytes", repeated, tag = "1")]
    resource_spans: Vec<Bytes>,
}

/// ExportTraceServiceResponse with nothing rejected.
#[derive(Clone, PartialEq, prost::Message)]
struct Accepted {}

impl tonic::server::NamedService for Collector {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl tonic::server::UnaryService<RawExport> for Collector {
    type Response = Accepted;
    type Future = std::future::Ready<Result<tonic::Response<Accepted>, tonic::Status>>;
    fn call(&mut self, request: tonic::Request<RawExport>) -> Self::Future {
        if let Ok(mut kept) = self.0.lock() {
            kept.extend(request.into_inner().resource_spans);
        }
        std::future::ready(Ok(tonic::Response::new(Accepted {})))
    }
}

impl tower::Service<http::Request<tonic::body::Body>> for Collector {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>,
    >;
    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let handler = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(handler, request).await)
        })
    }
}

impl Collector {
    fn spans(&self) -> usize {
        use prost::Message;
        let kept = self.0.lock().map(|k| k.clone()).unwrap_or_default();
        kept.iter()
            .filter_map(|b| {
                opentelemetry_proto::tonic::trace::v1::ResourceSpans::decode(b.clone()).ok()
            })
            .flat_map(|r| r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }
}

/// Registers a user and logs in through `gateway`: (user id, access token).
async fn sign_up(
    gateway: SocketAddr,
) -> Result<(String, String), Box<dyn std::error::Error + Send + Sync>> {
    let body =
        r#"{"username":"bench","email":"bench@example.com","password":"analytical engine 1843"}"#;
    let deadline = Instant::now() + Duration::from_secs(60);
    let user: serde_json::Value = loop {
        let attempt = async {
            let mut s = connect(gateway).await?;
            call(&mut s, "POST", "/api/v1/users", None, Some(body.into())).await
        };
        match attempt.await {
            Ok((201, b)) => break serde_json::from_slice(&b)?,
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            other => return Err(format!("registration failed: {other:?}").into()),
        }
    };
    let mut setup = connect(gateway).await?;
    let login = r#"{"login":"bench","password":"analytical engine 1843"}"#;
    let (_, tokens) = call(
        &mut setup,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(login.into()),
    )
    .await?;
    let tokens: serde_json::Value = serde_json::from_slice(&tokens)?;
    let token = tokens["accessToken"].as_str().ok_or("no token")?.to_owned();
    let id = user["id"].as_str().ok_or("no id")?.to_owned();
    Ok((id, token))
}

/// Runs the release `suite` binary with `env`, loads it, stops it: req/s.
async fn tracing_run(
    label: &str,
    env: &[(&str, String)],
    connections: usize,
    seconds: u64,
) -> Result<f64, Box<dyn std::error::Error + Send + Sync>> {
    let bin = std::env::var("SUITE_BIN").unwrap_or_else(|_| "target/release/suite".into());
    let dir = tempfile::tempdir()?;
    let port = |l: std::net::TcpListener| l.local_addr().map(|a| a.port());
    let ports = [
        port(std::net::TcpListener::bind("127.0.0.1:0")?)?,
        port(std::net::TcpListener::bind("127.0.0.1:0")?)?,
        port(std::net::TcpListener::bind("127.0.0.1:0")?)?,
    ];
    let gateway: SocketAddr = format!("127.0.0.1:{}", ports[2]).parse()?;
    let mut child = std::process::Command::new(&bin)
        .env("SUITE_DATA_DIR", dir.path())
        .env("SUITE_USER_ADDR", format!("127.0.0.1:{}", ports[0]))
        .env("SUITE_AUTH_ADDR", format!("127.0.0.1:{}", ports[1]))
        .env("SUITE_GATEWAY_ADDR", gateway.to_string())
        .env("RATE_LIMIT_BURST", "1000000000")
        .env("RATE_LIMIT_PER_SECOND", "1000000000")
        .env("RUST_LOG", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("{bin}: {e} (build it: cargo build --release)"))?;
    let result = async {
        let (id, token) = sign_up(gateway).await?;
        let mut stats = http_load(
            gateway,
            format!("/api/v1/users/{id}"),
            Some(token),
            connections,
            Duration::from_secs(seconds),
        )
        .await?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(report(label, &mut stats, seconds))
    }
    .await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    result
}

async fn tracing_cost(
    seconds: u64,
    connections: usize,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(collector.clone())
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    println!(
        "{connections} connections, {seconds} s each; the suite binary and this load generator on the same cores"
    );
    // Alternating rounds, so a slow patch of the machine hits both sides.
    let mut endpoint_env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
    ];
    // E.g. BENCH_SAMPLE_RATIO=0.1: a head-sampled production set-up.
    if let Ok(ratio) = std::env::var("BENCH_SAMPLE_RATIO") {
        endpoint_env.push(("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".into()));
        endpoint_env.push(("OTEL_TRACES_SAMPLER_ARG", ratio));
    }
    let (mut offs, mut ons, mut requests_on) = (Vec::new(), Vec::new(), 0.0);
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    for round in 1..=rounds {
        offs.push(
            tracing_run(
                &format!("round {round}: export off (no endpoint)"),
                &[],
                connections,
                seconds,
            )
            .await?,
        );
        let on = tracing_run(
            &format!("round {round}: export on (OTLP/gRPC, local collector)"),
            &endpoint_env,
            connections,
            seconds,
        )
        .await?;
        requests_on += on * seconds as f64;
        ons.push(on);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (off, on) = (median(&mut offs), median(&mut ons));
    let spans = collector.spans();
    println!(
        "medians: off {off:.0} req/s, on {on:.0} req/s: tracing keeps {:.0}% ({:.1}% lost)",
        100.0 * on / off,
        100.0 * (off - on) / off
    );
    println!(
        "spans received: {spans} ({:.1} per traced request; a sampled GET makes 4: HTTP server, gRPC client, gRPC server, database)",
        spans as f64 / requests_on.max(1.0)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    if std::env::args().nth(1).as_deref() == Some("tracing") {
        let mut args = std::env::args().skip(2);
        let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
        let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
        return tracing_cost(seconds, connections).await;
    }
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let window = Duration::from_secs(seconds);

    let dir = tempfile::tempdir()?;
    let config = suite::SuiteConfig::on_free_ports(dir.path().to_owned());
    let listeners = suite::Listeners::bind(&config).await?;
    let user_addr = listeners.user.local_addr()?;
    let gateway = listeners.gateway.local_addr()?;
    let mut gateway_config = suite_gateway::Config::defaults();
    // Measure the transcoding, not the limiter's refusals.
    gateway_config.rate_limit_burst = u32::MAX / 2;
    gateway_config.rate_limit_per_second = u32::MAX / 2;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let suite = tokio::spawn(suite::run(
        config,
        suite_user::Config::defaults(),
        suite_auth::Config::defaults(),
        gateway_config,
        listeners,
        async {
            let _ = stopped.await;
        },
    ));

    let (id, token) = sign_up(gateway).await?;

    println!("{connections} connections, {seconds} s each, client and servers on the same cores");
    let mut ceiling = http_load(gateway, "/api/health".into(), None, connections, window).await?;
    report(
        "GET /api/health (gateway, no upstream)",
        &mut ceiling,
        seconds,
    );
    tokio::task::spawn_blocking(move || wrk(gateway, "/api/health", None, connections, seconds))
        .await?;
    let mut via = http_load(
        gateway,
        format!("/api/v1/users/{id}"),
        Some(token.clone()),
        connections,
        window,
    )
    .await?;
    let via_rps = report(
        "GET /api/v1/users/{id} through the gateway",
        &mut via,
        seconds,
    );
    let path = format!("/api/v1/users/{id}");
    tokio::task::spawn_blocking({
        let token = token.clone();
        move || wrk(gateway, &path, Some(&token), connections, seconds)
    })
    .await?;

    // Direct gRPC: one HTTP/2 connection per caller, as HTTP/1.1 above.
    let all = Arc::new(Mutex::new(Stats {
        ok: 0,
        latencies: Vec::new(),
    }));
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let channel = tonic::transport::Channel::from_shared(format!("http://{user_addr}"))?
            .connect()
            .await?;
        let mut client = UserServiceClient::new(channel);
        let (token, id, all) = (token.clone(), id.clone(), all.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Stats {
                ok: 0,
                latencies: Vec::new(),
            };
            while Instant::now() < deadline {
                let mut req = tonic::Request::new(GetUserRequest { id: id.clone() });
                if let Ok(v) = format!("Bearer {token}").parse() {
                    req.metadata_mut().insert("authorization", v);
                }
                let start = Instant::now();
                if client.get_user(req).await.is_ok() {
                    mine.ok += 1;
                    mine.latencies.push(start.elapsed());
                }
            }
            let mut all = all.lock().await;
            all.ok += mine.ok;
            all.latencies.extend(mine.latencies);
        }));
    }
    for t in tasks {
        t.await?;
    }
    let mut direct = std::mem::replace(
        &mut *all.lock().await,
        Stats {
            ok: 0,
            latencies: Vec::new(),
        },
    );
    let direct_rps = report("GetUser directly over gRPC", &mut direct, seconds);
    println!(
        "the gateway keeps {:.0}% of direct gRPC throughput",
        100.0 * via_rps / direct_rps
    );

    let _ = stop.send(());
    suite.await??;
    Ok(())
}
