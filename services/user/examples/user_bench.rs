//! Benchmarks of the user service (see BENCHMARKS.md):
//! 1. argon2id hash time at the configured parameters (OWASP defaults);
//! 2. GetUser calls per second over real gRPC on loopback, with an SQLite store.
//!
//! `cargo run --release -p suite-user --example user_bench [-- <seconds> <concurrency>]`

use std::time::{Duration, Instant};
use suite_proto::user::{
    CreateUserRequest, GetUserRequest, user_service_client::UserServiceClient,
};
use suite_tokens::{Audience, Claims, SigningKey, jwks_of};
use tonic::{Request, transport::Channel};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);

    let config = suite_user::Config::defaults();
    let params = config.hash_params();
    let hasher = suite_user::password::PasswordHasher::new(
        params,
        0,
        suite_user::password::HashingOptions {
            concurrency: 1,
            max_waiting: 16,
            nice: 0,
        },
    )
    .await?;
    let password = suite_proto::Password::parse("correct horse battery staple".into())?;
    let mut times = Vec::new();
    for _ in 0..20 {
        let start = Instant::now();
        hasher
            .hash_new(password.clone(), vec![], "password")
            .await?;
        times.push(start.elapsed());
    }
    times.sort();
    println!(
        "argon2id m={} KiB t={} p={}: median {:.1} ms, min {:.1} ms, max {:.1} ms over {} hashes",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );

    let dir = tempfile::tempdir()?;
    let key = SigningKey::generate("bench")?;
    let mut config = suite_user::Config::defaults();
    config.database_url = suite_db::DatabaseUrl::sqlite(&dir.path().join("user.db"));
    config.keys.jwks = Some(suite_tokens::jwks::JwksSource::Static(jwks_of(
        std::slice::from_ref(&key),
    )?));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(suite_user::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{addr}"))?.connect_lazy();
    let mut client = UserServiceClient::new(channel.clone());
    // The service turns SERVING once migrated; retry registration until then.
    let user = loop {
        let req = CreateUserRequest {
            username: "bench".into(),
            email: "bench@example.com".into(),
            password: "correct horse battery staple".into(),
            ..CreateUserRequest::default()
        };
        match client.create_user(req).await {
            Ok(r) => break r.into_inner().user.ok_or("no user")?,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let now = jsonwebtoken::get_current_timestamp() as i64;
    let token = key.sign(&Claims {
        iss: "suite-auth".into(),
        aud: Audience::One("suite".into()),
        sub: user.id.clone(),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: "bench".into(),
        sid: None,
        roles: vec!["user".into()],
        client_id: None,
        scope: None,
        amr: Vec::new(),
        auth_time: None,
        pat: false,
    })?;

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let mut client = UserServiceClient::new(channel.clone());
        let token = token.clone();
        workers.push(tokio::spawn(async move {
            let mut ok = 0u64;
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let mut req = Request::new(GetUserRequest { id: "me".into() });
                if let Ok(v) = format!("Bearer {token}").parse() {
                    req.metadata_mut().insert("authorization", v);
                }
                let start = Instant::now();
                if client.get_user(req).await.is_ok() {
                    ok += 1;
                    latencies.push(start.elapsed());
                }
            }
            (ok, latencies)
        }));
    }
    let mut total = 0;
    let mut latencies = Vec::new();
    for w in workers {
        let (ok, l) = w.await?;
        total += ok;
        latencies.extend(l);
    }
    latencies.sort();
    let pct =
        |p: f64| ms(latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)]);
    println!(
        "GetUser over gRPC (SQLite, one HTTP/2 connection, {concurrency} concurrent callers, {seconds} s): \
         {:.0} calls/s, p50 {:.2} ms, p99 {:.2} ms",
        total as f64 / seconds as f64,
        pct(0.50),
        pct(0.99)
    );
    let _ = stop.send(());
    server.await??;
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
