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
    grpc::{HealthReporter, incoming, reflection_service, reflection_service_v1alpha},
    jwks::{JwksSource, KeyCache},
};
use tokio::{net::TcpListener, sync::watch};
use tonic::transport::Server;
use tonic_health::ServingStatus;
use tower::limit::GlobalConcurrencyLimitLayer;

/// How often a known-good database is re-checked, and a bad one retried.
const READY_RECHECK: Duration = Duration::from_secs(5);
const NOT_READY_RETRY: Duration = Duration::from_millis(500);
/// The shortest gap between two JWKS reloads triggered by unknown key ids.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(5);

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

    let (mut health, health_service) = tonic_health::server::health_reporter();
    set_health(&mut health, ServingStatus::NotServing).await;
    let (stop_tx, stop_rx) = watch::channel(false);
    let readiness = tokio::spawn(watch_readiness(store, health.clone(), stop_rx));

    let api = UserServiceServer::new(UserApi::new(core, auth))
        .max_decoding_message_size(config.grpc_max_message_bytes);
    let reflection_err =
        |e: tonic_reflection::server::Error| Error::Internal(format!("reflection: {e}"));
    let reflection = reflection_service().map_err(reflection_err)?;
    let reflection_v1alpha = reflection_service_v1alpha().map_err(reflection_err)?;

    let addr = listener.local_addr().ok();
    tracing::info!(?addr, database = %redact_url(&config.database_url), "user service listening");
    let mut health_on_stop = health.clone();
    let on_shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        set_health(&mut health_on_stop, ServingStatus::NotServing).await;
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
    let keys = KeyCache::new(source, JWKS_MIN_REFRESH);
    match keys.load().await {
        Ok(0) if config.jwks.is_some() => tracing::warn!("the JWKS holds no usable Ed25519 key"),
        Ok(n) => tracing::debug!(keys = n, "JWKS loaded"),
        Err(e) => {
            tracing::warn!(error = %e, "JWKS not loaded yet; will retry when a token needs it")
        }
    }
    keys
}

async fn set_health(health: &mut HealthReporter, status: ServingStatus) {
    health.set_service_status("", status).await;
    health
        .set_service_status("suite.user.v1.UserService", status)
        .await;
}

/// Migrates once the database answers, then reports SERVING while it keeps
/// answering and NOT_SERVING while it does not.
async fn watch_readiness(
    store: Arc<dyn UserStore>,
    mut health: HealthReporter,
    mut stop: watch::Receiver<bool>,
) {
    let mut migrated = false;
    let mut was_ready = false;
    loop {
        let check = async {
            if !migrated {
                store.migrate().await?;
                migrated = true;
            }
            store.ping().await
        };
        let ready = match check.await {
            Ok(()) => true,
            Err(e) => {
                if was_ready || !migrated {
                    tracing::warn!(error = %e, "database not ready");
                }
                false
            }
        };
        if *stop.borrow() {
            return;
        }
        if ready != was_ready {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            tracing::info!(?status, "readiness changed");
            set_health(&mut health, status).await;
            was_ready = ready;
        }
        let pause = if ready {
            READY_RECHECK
        } else {
            NOT_READY_RETRY
        };
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The URL without its password, for logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}
