//! Assembles and runs the gRPC server: store, hasher, token verification,
//! health, reflection, limits and graceful shutdown.

use crate::{
    config::Config,
    error::Error,
    grpc::UserApi,
    password::PasswordHasher,
    service::UserCore,
    store::{self, UserStore},
};
use std::{future::Future, sync::Arc, time::Duration};
use suite_proto::user::user_service_server::UserServiceServer;
use suite_shared::{
    auth::Authenticator,
    grpc::redact_url,
    jwks::{JwksSource, KeyCache},
    server::{self, migrate_then_ping},
};
use tokio::{net::TcpListener, sync::watch};
use tonic::service::Routes;

/// The gRPC services of this server (for health and reflection).
const SERVICES: &[&str] = &["suite.user.v1.UserService"];

/// Opens the configured store.
pub fn open_store(config: &Config) -> Result<Arc<dyn UserStore>, Error> {
    store::open(&config.database_url, config.pool.settings()).map_err(|reason| {
        Error::Config(crate::config::ConfigError {
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

/// Serves the user service on `listener` until `shutdown` completes, then
/// turns NOT_SERVING and lets in-flight calls finish.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    config.validate()?;
    let store = open_store(&config)?;
    let hasher = PasswordHasher::new(
        config.hash_params(),
        config.password_min_score,
        config.hash_concurrency(),
        config.password_hash_queue,
    )
    .await?;
    let auth = Authenticator::new(load_keys(&config).await, config.token_rules());
    let core = Arc::new(UserCore::new(store.clone(), hasher));

    let api = UserServiceServer::new(UserApi::new(core, auth))
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
    let addr = listener.local_addr().ok();
    tracing::info!(?addr, database = %redact_url(&config.database_url), "user service listening");
    let (stop, _) = watch::channel(false);
    server::serve(
        Routes::new(api),
        options,
        readiness,
        listener,
        shutdown,
        stop,
    )
    .await?;
    tracing::info!("user service stopped");
    Ok(())
}

async fn load_keys(config: &Config) -> KeyCache {
    let source = config
        .jwks
        .as_deref()
        .and_then(|j| JwksSource::from_config(j).ok());
    if source.is_none() {
        tracing::warn!(
            "JWKS is not set: no access token will verify, so only CreateUser can succeed"
        );
    }
    let keys = KeyCache::new(source, Duration::from_secs(config.jwks_refresh_min_secs));
    match keys.load().await {
        Ok(0) if config.jwks.is_some() => tracing::warn!("the JWKS holds no usable Ed25519 key"),
        Ok(n) => tracing::debug!(keys = n, "JWKS loaded"),
        Err(e) => {
            tracing::warn!(error = %e, "JWKS not loaded yet; will retry when a token needs it")
        }
    }
    keys
}
