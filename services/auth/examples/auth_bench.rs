//! Benchmarks of the auth service (see BENCHMARKS.md), in one run:
//! 1. the argon2id bound: raw password verifications per second with the
//!    user service's parameters, on all cores;
//! 2. Login calls per second over real gRPC (auth → user → argon2id), SQLite;
//! 3. access-token verifications per second by the shared verifier, one core.
//!
//! `cargo run --release -p suite-auth --example auth_bench [-- <seconds> <concurrency>]`

use std::{
    sync::Arc,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};
use suite_proto::{
    auth::{LoginRequest, auth_service_client::AuthServiceClient},
    user::{CreateUserRequest, user_service_client::UserServiceClient},
};
use suite_tokens::{
    SigningKey, TokenRules, Verifier,
    jwks::{JwksSource, KeyCache},
    jwks_of,
};
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let window = Duration::from_secs(seconds);

    // 1. The bound: verifications on every core, nothing else.
    let user_defaults = suite_user::Config::defaults();
    let hasher = suite_user::password::PasswordHasher::new(
        user_defaults.hash_params(),
        0,
        suite_user::password::HashingOptions {
            concurrency: cores,
            max_waiting: 1 << 16,
            nice: 0,
        },
    )
    .await?;
    let password = suite_proto::Password::parse(PASSWORD.into())?;
    let hash = hasher
        .hash_new(password.clone(), vec![], "password")
        .await?;
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for _ in 0..cores * 2 {
        let (hasher, hash, done, password) =
            (hasher.clone(), hash.clone(), done.clone(), password.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if hasher
                    .verify(password.clone(), Some(hash.clone()))
                    .await
                    .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let bound = done.load(Ordering::Relaxed) as f64 / seconds as f64;
    println!("argon2id verifications on {cores} cores (the bound): {bound:.1}/s");

    // 2. Logins through both services.
    let dir = tempfile::tempdir()?;
    let key = SigningKey::generate_thumbprinted()?;
    let user_l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let auth_l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let (user_addr, auth_addr) = (user_l.local_addr()?, auth_l.local_addr()?);
    let mut user_config = suite_user::Config::defaults();
    user_config.database_url = suite_db::DatabaseUrl::sqlite(&dir.path().join("user.db"));
    user_config.keys.jwks = Some(suite_tokens::jwks::JwksSource::grpc(auth_addr));
    let mut auth_config = suite_auth::Config::defaults();
    auth_config.database_url = suite_db::DatabaseUrl::sqlite(&dir.path().join("auth.db"));
    auth_config.user_service_url = format!("http://{user_addr}");
    auth_config.signing_key = Some(key.to_pkcs8_pem().into());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let user = tokio::spawn(suite_user::serve(
        user_config,
        user_l,
        wait(stopped.clone()),
    ));
    let auth = tokio::spawn(suite_auth::serve(auth_config, auth_l, wait(stopped)));
    let users =
        UserServiceClient::new(Channel::from_shared(format!("http://{user_addr}"))?.connect_lazy());
    let auth_channel = Channel::from_shared(format!("http://{auth_addr}"))?.connect_lazy();
    loop {
        let req = CreateUserRequest {
            username: "bench".into(),
            email: "bench@example.com".into(),
            password: PASSWORD.into(),
            ..CreateUserRequest::default()
        };
        if users.clone().create_user(req).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let login = LoginRequest {
        login: "bench".into(),
        password: PASSWORD.into(),
        user_agent: String::new(),
    };
    let mut warm = AuthServiceClient::new(auth_channel.clone());
    let access_token = loop {
        match warm.login(login.clone()).await {
            Ok(r) => break r.into_inner().access_token,
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let ok = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + window;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (mut client, login, ok) = (
            AuthServiceClient::new(auth_channel.clone()),
            login.clone(),
            ok.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if client.login(login.clone()).await.is_ok() {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let logins = ok.load(Ordering::Relaxed) as f64 / seconds as f64;
    println!(
        "Login over gRPC (auth → user, SQLite, {concurrency} concurrent callers): {logins:.1}/s = {:.0}% of the bound",
        100.0 * logins / bound
    );
    let _ = stop.send(true);
    user.await??;
    auth.await??;

    // 3. Verifying access tokens: what every service does on every call.
    let cache = KeyCache::new(
        Some(JwksSource::Static(jwks_of(&[key])?)),
        Duration::from_secs(5),
    );
    cache.load().await?;
    let verifier = Verifier::new(
        cache,
        TokenRules {
            issuer: "suite-auth".into(),
            audiences: vec!["suite".into()],
            leeway_secs: 30,
            admins_need_second_factor: false,
        },
    );
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(seconds.min(5)) {
        for _ in 0..1000 {
            verifier.verify(&access_token).await?;
        }
        n += 1000;
    }
    println!(
        "access-token verifications (EdDSA, one core): {:.0}/s",
        n as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}
