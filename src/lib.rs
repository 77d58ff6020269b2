//! The whole suite in one process, for a first look and local development:
//! each service on its own port, talking real gRPC over loopback, each with
//! its own SQLite file under the data directory.
#![forbid(unsafe_code)]

use std::{net::SocketAddr, path::PathBuf, str::FromStr};
use suite_db::DatabaseUrl;
use suite_tokens::jwks::JwksSource;
use tokio::{net::TcpListener, sync::watch};

/// The launcher's own settings. Every other variable of the services
/// (`JWT_ISSUER`, `ARGON2_*`, `SESSION_*`, …) applies as documented for each.
#[derive(Debug, Clone, clap::Args)]
pub struct SuiteConfig {
    /// The user service's gRPC address.
    #[arg(long, env = "SUITE_USER_ADDR", default_value = "127.0.0.1:50051")]
    pub user_addr: SocketAddr,
    /// The auth service's gRPC address.
    #[arg(long, env = "SUITE_AUTH_ADDR", default_value = "127.0.0.1:50052")]
    pub auth_addr: SocketAddr,
    /// The REST gateway's HTTP address.
    #[arg(long, env = "SUITE_GATEWAY_ADDR", default_value = "127.0.0.1:8080")]
    pub gateway_addr: SocketAddr,
    /// The gateway's admin address (`/metrics`, `/livez`, `/readyz`); unset:
    /// none. Not `ADMIN_ADDR`, which every service of the process would read.
    #[arg(long, env = "SUITE_GATEWAY_ADMIN_ADDR")]
    pub gateway_admin_addr: Option<SocketAddr>,
    /// Where the SQLite files and a generated signing key are kept.
    #[arg(long, env = "SUITE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// The user service's database (default: SQLite in the data directory).
    #[arg(long, env = "SUITE_USER_DATABASE_URL", value_parser = DatabaseUrl::from_str)]
    pub user_database_url: Option<DatabaseUrl>,
    /// The auth service's database (default: SQLite in the data directory).
    #[arg(long, env = "SUITE_AUTH_DATABASE_URL", value_parser = DatabaseUrl::from_str)]
    pub auth_database_url: Option<DatabaseUrl>,
}

impl SuiteConfig {
    /// Every service on a free loopback port (the tests' and benchmarks'
    /// suite), keeping its files in `data_dir`, on SQLite unless told.
    pub fn on_free_ports(data_dir: PathBuf) -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            user_addr: any,
            auth_addr: any,
            gateway_addr: any,
            gateway_admin_addr: None,
            data_dir,
            user_database_url: None,
            auth_database_url: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{0}")]
    Bind(std::io::Error),
    #[error("user service: {0}")]
    User(#[from] suite_user::StartError),
    #[error("auth service: {0}")]
    Auth(#[from] suite_auth::StartError),
    #[error("gateway: {0}")]
    Gateway(#[from] suite_gateway::Error),
    #[error("no randomness for the forwarding secret: {0}")]
    Random(String),
    #[error("the generated FACTOR_KEY_FILE: {0}")]
    FactorKey(String),
    #[error("events: {0}")]
    Events(String),
    #[error("a service task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The binaries the suite runs, each exporting its spans under its own name.
pub const SERVICES: [&str; 3] = [
    <suite_gateway::Gateway as suite_runtime::runner::Service>::NAME,
    <suite_auth::AuthBinary as suite_runtime::runner::Service>::NAME,
    <suite_user::UserBinary as suite_runtime::runner::Service>::NAME,
];

/// What to tell a person who just started the suite: where it is and a
/// first request to try.
pub fn welcome(gateway: SocketAddr) -> String {
    let url = format!("http://{gateway}");
    format!(
        "The suite is running. REST API: {url}/api/v1  (OpenAPI: {url}/api/openapi.json)\n\
         Try:\n  \
         curl -i -X POST {url}/api/v1/users -H 'content-type: application/json' \\\n    \
         -d '{{\"username\":\"ada\",\"email\":\"ada@example.com\",\"password\":\"analytical engine 1843\"}}'\n  \
         curl -s -X POST {url}/api/v1/auth/login -H 'content-type: application/json' \\\n    \
         -d '{{\"login\":\"ada\",\"password\":\"analytical engine 1843\"}}'\n\
         Stop with Ctrl-C."
    )
}

/// A fresh random secret (256 bits, base64url).
fn forwarding_secret() -> Result<secrecy::SecretString, SuiteError> {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SuiteError::Random(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes).into())
}

/// The key that seals second factors' secrets, kept in the data directory
/// (owner-only) when none is configured: made on the first run, read after.
fn generated_factor_key(dir: &std::path::Path) -> Result<std::path::PathBuf, SuiteError> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let path = dir.join("factor.key");
    if path.exists() {
        return Ok(path);
    }
    // The data directory is the owner's alone, as the databases make it.
    suite_runtime::files::create_private_parent(&path)
        .map_err(|e| SuiteError::FactorKey(format!("{}: {e}", dir.display())))?;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| SuiteError::Random(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .map_err(|e| SuiteError::FactorKey(format!("{}: {e}", path.display())))?;
    std::io::Write::write_all(&mut file, STANDARD.encode(bytes).as_bytes())
        .map_err(|e| SuiteError::FactorKey(format!("{}: {e}", path.display())))?;
    tracing::warn!(path = %path.display(),
        "NO FACTOR_KEY CONFIGURED: generated one for second factors' secrets and kept it in the data directory. \
         Set FACTOR_KEY (or FACTOR_KEY_FILE) for production, kept apart from the database's backups.");
    Ok(path)
}

/// The bound listeners, so callers (and tests) know the real ports before serving.
pub struct Listeners {
    pub user: TcpListener,
    pub auth: TcpListener,
    pub gateway: TcpListener,
    /// The gateway's admin port, when configured.
    pub gateway_admin: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &SuiteConfig) -> Result<Self, SuiteError> {
        Ok(Self {
            user: suite_runtime::listen::bind(config.user_addr)
                .await
                .map_err(SuiteError::Bind)?,
            auth: suite_runtime::listen::bind(config.auth_addr)
                .await
                .map_err(SuiteError::Bind)?,
            gateway: suite_runtime::listen::bind(config.gateway_addr)
                .await
                .map_err(SuiteError::Bind)?,
            gateway_admin: match config.gateway_admin_addr {
                Some(addr) => Some(
                    suite_runtime::listen::bind(addr)
                        .await
                        .map_err(SuiteError::Bind)?,
                ),
                None => None,
            },
        })
    }
}

/// Runs the services and the gateway until `shutdown` completes (or one of
/// them fails, which stops the others too).
pub async fn run(
    config: SuiteConfig,
    mut user: suite_user::Config,
    mut auth: suite_auth::Config,
    mut gateway: suite_gateway::Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), SuiteError> {
    let user_addr = listeners.user.local_addr().map_err(SuiteError::Bind)?;
    let auth_addr = listeners.auth.local_addr().map_err(SuiteError::Bind)?;
    let sqlite = |name: &str| DatabaseUrl::sqlite(&config.data_dir.join(name));
    user.database_url = config
        .user_database_url
        .clone()
        .unwrap_or_else(|| sqlite("user.db"));
    // Second factors' secrets are sealed with a key kept beside the
    // databases unless one is configured.
    if user.factor_key.is_none() && user.factor_key_file.is_none() {
        user.factor_key_file = Some(generated_factor_key(&config.data_dir)?);
    }
    // The user service trusts the auth service's keys, fetched over gRPC.
    user.keys.jwks = Some(JwksSource::grpc(auth_addr));
    user.listen_addr = user_addr;
    auth.database_url = config
        .auth_database_url
        .clone()
        .unwrap_or_else(|| sqlite("auth.db"));
    auth.user_service_url = format!("http://{user_addr}");
    auth.data_dir = config.data_dir.clone();
    auth.listen_addr = auth_addr;
    let gateway_addr = listeners.gateway.local_addr().map_err(SuiteError::Bind)?;
    // The OIDC issuer is this run's gateway unless PUBLIC_URL names another.
    if auth.public_url == "http://127.0.0.1:8080" {
        auth.public_url = format!("http://{gateway_addr}");
    }
    // The links in mail point to the same pages.
    if user.mail.public_url == "http://127.0.0.1:8080" {
        user.mail.public_url = auth.public_url.clone();
    }
    // Without SMTP_URL, mail lands in the data directory's mailbox.
    if user.mail.mail_dir == std::path::Path::new("data/mail") {
        user.mail.mail_dir = config.data_dir.join("mail");
    }
    gateway.user_service_url = format!("http://{user_addr}");
    gateway.auth_service_url = format!("http://{auth_addr}");
    gateway.listen_addr = gateway_addr;
    // The services believe the client address only from a gateway holding
    // the shared secret: one made up for this run unless one was given.
    let secret = match gateway.forwarding_secret.clone() {
        Some(s) => s,
        None => forwarding_secret()?,
    };
    for service in [&mut user.forwarded, &mut auth.forwarded] {
        service
            .forwarding_secret
            .get_or_insert_with(|| secret.clone());
    }
    gateway.forwarding_secret = Some(secret);
    // Without NATS, the three share one in-process bus: the gateway and
    // the services learn revocations and the auth service ends sessions
    // from the same events as with NATS. Its recent past is journaled in
    // the data directory, so that a restart still refuses what was revoked
    // before it. Each keeps its own NATS_URL otherwise (normally the same
    // one).
    let journal = gateway
        .events
        .events_journal
        .clone()
        .unwrap_or_else(|| config.data_dir.join("events.journal"));
    let local = suite_events::LocalBus::persistent(&journal)
        .map_err(|e| SuiteError::Events(e.to_string()))?;
    for events in [&mut user.events, &mut auth.events, &mut gateway.events] {
        if events.nats_url.is_none() {
            events.local = Some(local.clone());
        }
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let mut user_task = tokio::spawn(suite_user::serve(
        user,
        listeners.user,
        stopped(stop_rx.clone()),
    ));
    let mut auth_task = tokio::spawn(suite_auth::serve(
        auth,
        listeners.auth,
        stopped(stop_rx.clone()),
    ));
    let mut gateway_task = tokio::spawn(suite_gateway::serve_with_admin(
        gateway,
        listeners.gateway,
        listeners.gateway_admin,
        stopped(stop_rx),
    ));
    tracing::info!(%user_addr, %auth_addr, %gateway_addr, "suite running");

    let signal_tx = stop_tx.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = signal_tx.send(true);
    });
    // Whichever ends first (an error, or the stop) stops the others, which
    // then drain their own calls.
    let (mut user_done, mut auth_done, mut gateway_done) = (None, None, None);
    tokio::select! {
        r = &mut user_task => user_done = Some(r),
        r = &mut auth_task => auth_done = Some(r),
        r = &mut gateway_task => gateway_done = Some(r),
    }
    let _ = stop_tx.send(true);
    // A finished JoinHandle must not be awaited again.
    let gateway_result = match gateway_done {
        Some(r) => r,
        None => gateway_task.await,
    }?;
    let auth_result = match auth_done {
        Some(r) => r,
        None => auth_task.await,
    }?;
    let user_result = match user_done {
        Some(r) => r,
        None => user_task.await,
    }?;
    user_result?;
    auth_result?;
    gateway_result?;
    Ok(())
}
