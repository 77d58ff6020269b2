//! Assembles and runs the auth service: store, keys, the user-service client,
//! token verification, health, reflection, limits and graceful shutdown.

use crate::{
    config::{Config, ConfigError},
    error::Error,
    grpc::AuthApi,
    keys::KeyRing,
    service::{AuthCore, Settings},
    store::{self, AuthStore},
    users::{ServiceTokens, UserDirectory},
};
use std::{future::Future, sync::Arc, time::Duration};
use suite_proto::auth::auth_service_server::AuthServiceServer;
use suite_shared::{
    auth::Authenticator,
    grpc::redact_url,
    jwks::{JwksSource, KeyCache},
    jwt::TokenRules,
    server::{self, migrate_then_ping},
};
use tokio::{net::TcpListener, sync::watch};
use tonic::service::Routes;

/// How often dead sessions and stale login-failure counters are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The gRPC services of this server (for health and reflection).
const SERVICES: &[&str] = &["suite.auth.v1.AuthService"];

pub fn open_store(config: &Config) -> Result<Arc<dyn AuthStore>, Error> {
    store::open(&config.database_url, config.pool.settings()).map_err(|reason| {
        Error::Config(ConfigError {
            variable: "DATABASE_URL",
            reason,
        })
    })
}

/// Applies the store's migrations and returns (the `migrate` subcommand).
pub async fn migrate(config: &Config) -> Result<(), Error> {
    config.validate()?;
    open_store(config)?.migrate().await?;
    Ok(())
}

/// Serves the auth service on `listener` until `shutdown` completes, then
/// turns NOT_SERVING and lets in-flight calls finish.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.validate()?;
    let store = open_store(&config)?;
    let keys = Arc::new(KeyRing::load(&config)?);
    let jwks = keys.jwks().map_err(|e| Error::Internal(e.to_string()))?;
    tracing::info!(
        active_kid = keys.active().kid(),
        keys = jwks.keys.len(),
        "signing keys loaded"
    );

    // This service verifies the tokens it issued with its own public keys.
    let own_keys = KeyCache::new(Some(JwksSource::Static(jwks)), Duration::from_secs(5));
    own_keys
        .load()
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    let auth = Authenticator::new(
        own_keys,
        TokenRules {
            issuer: config.jwt_issuer.clone(),
            audiences: vec![config.access_token_audience.clone()],
            leeway_secs: config.jwt_leeway_secs,
        },
    );
    let users = UserDirectory::new(
        &config.user_service_url,
        Duration::from_millis(config.user_service_connect_timeout_ms),
        Duration::from_secs(config.user_service_timeout_secs),
        config.upstream.resolve_interval(),
        ServiceTokens::new(
            keys.active().clone(),
            config.jwt_issuer.clone(),
            config.user_service_audience.clone(),
        ),
    )
    .map_err(|reason| {
        Error::Config(ConfigError {
            variable: "USER_SERVICE_URL",
            reason,
        })
    })?;
    let settings = Settings {
        issuer: config.jwt_issuer.clone(),
        audience: config.access_token_audience.clone(),
        access_ttl: Duration::from_secs(config.access_token_ttl_secs),
        idle_timeout: Duration::from_secs(config.session_idle_timeout_secs),
        max_lifetime: Duration::from_secs(config.session_max_lifetime_secs),
        reuse_grace: Duration::from_secs(config.refresh_reuse_grace_secs),
        throttle: config.throttle(),
    };
    let core = Arc::new(AuthCore::new(store.clone(), users, keys, settings));

    let api = AuthServiceServer::new(AuthApi::new(core.clone(), auth))
        .max_decoding_message_size(config.grpc.max_message_bytes());
    let options = config.grpc.options(SERVICES);
    // Metrics and liveness for operators, for as long as the service runs.
    let _admin = suite_shared::metrics::spawn_admin(config.admin.admin_addr)
        .await
        .map_err(|e| Error::Internal(format!("ADMIN_ADDR: {e}")))?;
    let readiness = migrate_then_ping(
        {
            let store = store.clone();
            move || {
                let store = store.clone();
                Box::pin(async move { store.migrate().await.map_err(|e| e.to_string()) })
            }
        },
        move || {
            let store = store.clone();
            Box::pin(async move { store.ping().await.map_err(|e| e.to_string()) })
        },
    );
    let (stop, stopped) = watch::channel(false);
    let pruning = tokio::spawn(prune_periodically(core, stopped));
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, database = %redact_url(&config.database_url), "auth service listening");
    let result = server::serve(
        Routes::new(api),
        options,
        readiness,
        listener,
        shutdown,
        stop,
    )
    .await;
    pruning.abort();
    tracing::info!("auth service stopped");
    Ok(result?)
}

/// Keeps the tables from growing without end (every replica does it; the
/// deletes are idempotent).
async fn prune_periodically(core: Arc<AuthCore>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.changed() => return,
        }
        match core.prune().await {
            Ok(n) => tracing::info!(sessions = n, "pruned dead sessions"),
            Err(e) => tracing::warn!(error = %e, "pruning failed; will retry"),
        }
    }
}
