//! Assembles and runs the gRPC server: store, hasher, token verification,
//! health, reflection, limits and graceful shutdown.

use crate::{
    config::Config,
    error::Error,
    grpc::UserApi,
    password::PasswordHasher,
    service::UserCore,
    store::{self, PoolSettings, UserStore},
};
use std::{future::Future, sync::Arc, time::Duration};
use suite_proto::user::user_service_server::UserServiceServer;
use suite_shared::{
    auth::Authenticator,
    grpc::{
        ServingStatus, incoming, redact_url, reflection_service, reflection_service_v1alpha,
        set_health, watch_readiness,
    },
    jwks::{JwksSource, KeyCache},
};
use tokio::{net::TcpListener, sync::watch};
use tonic::transport::Server;
use tower::limit::GlobalConcurrencyLimitLayer;

/// The services served here: their health is reported (besides the overall
/// `""`) and reflection lists them.
const HEALTH_SERVICES: &[&str] = &["suite.user.v1.UserService"];

/// Opens the configured store.
pub fn open_store(config: &Config) -> Result<Arc<dyn UserStore>, Error> {
    let settings = PoolSettings {
        max_connections: config.database_max_connections,
        acquire_timeout: Duration::from_secs(config.database_acquire_timeout_secs),
    };
    store::open(&config.database_url, settings).map_err(|reason| {
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

    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, HEALTH_SERVICES, ServingStatus::NotServing).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let readiness = tokio::spawn(watch_readiness(
        readiness_check(store),
        health.clone(),
        HEALTH_SERVICES,
        stop_rx,
    ));

    let api = UserServiceServer::new(UserApi::new(core, auth))
        .max_decoding_message_size(config.grpc_max_message_bytes);
    let reflection_err =
        |e: tonic_reflection::server::Error| Error::Internal(format!("reflection: {e}"));
    let reflection = reflection_service(HEALTH_SERVICES).map_err(reflection_err)?;
    let reflection_v1alpha = reflection_service_v1alpha(HEALTH_SERVICES).map_err(reflection_err)?;

    let addr = listener.local_addr().ok();
    tracing::info!(?addr, database = %redact_url(&config.database_url), "user service listening");
    let health_on_stop = health.clone();
    let on_shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        set_health(&health_on_stop, HEALTH_SERVICES, ServingStatus::NotServing).await;
    };
    let result = Server::builder()
        // tonic also honours a shorter grpc-timeout sent by the client.
        .timeout(config.grpc_timeout())
        // Bounds memory and database pressure under a flood; excess calls wait.
        .layer(GlobalConcurrencyLimitLayer::new(
            config.grpc_concurrency_limit,
        ))
        .trace_fn(|req| {
            tracing::info_span!(
                "rpc",
                rpc.system = "grpc",
                rpc.method = %req.uri().path(),
                rpc.grpc.status_code = tracing::field::Empty,
            )
        })
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(api)
        .serve_with_incoming_shutdown(incoming(listener), on_shutdown)
        .await;
    readiness.abort();
    tracing::info!("user service stopped");
    Ok(result?)
}

/// Ready once migrated (done once, by whichever check first reaches the
/// database) and while the database answers.
fn readiness_check(
    store: Arc<dyn UserStore>,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>> {
    let migrated = Arc::new(std::sync::atomic::AtomicBool::new(false));
    move || {
        let store = store.clone();
        let migrated = migrated.clone();
        Box::pin(async move {
            if !migrated.load(std::sync::atomic::Ordering::Relaxed) {
                store.migrate().await.map_err(|e| e.to_string())?;
                migrated.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            store.ping().await.map_err(|e| e.to_string())
        })
    }
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
