//! Running a tonic server the way every service of the suite does: health
//! (NOT_SERVING until ready, and again from the stop signal on), reflection
//! for the services served, a per-RPC span, limits, and a graceful drain.

use crate::deadline::DeadlineLayer;
use crate::grpc::{
    ServingStatus, incoming, reflection_service, reflection_service_v1alpha, set_health,
    watch_readiness,
};
use std::{pin::Pin, sync::Arc, time::Duration};
use tokio::{net::TcpListener, sync::watch};
use tonic::{service::Routes, transport::Server};
use tower::limit::GlobalConcurrencyLimitLayer;

/// A readiness check's future.
pub type Check = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// How a service is served.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The gRPC services of this server: health reports on them and reflection lists them.
    pub services: &'static [&'static str],
    /// Upper bound on any call (a shorter client `grpc-timeout` wins).
    pub timeout: Duration,
    /// Most calls served at once; more wait.
    pub concurrency_limit: usize,
    /// How long to go on serving, NOT_SERVING, after the stop signal.
    pub drain_delay: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A readiness check that runs `migrate` until it has succeeded once, then
/// `ping` each time.
pub fn migrate_then_ping(
    migrate: impl Fn() -> Check + Send + Sync + 'static,
    ping: impl Fn() -> Check + Send + Sync + 'static,
) -> impl FnMut() -> Check + Send + 'static {
    let migrated = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (migrate, ping) = (Arc::new(migrate), Arc::new(ping));
    move || {
        let (migrated, migrate, ping) = (migrated.clone(), migrate.clone(), ping.clone());
        Box::pin(async move {
            if !migrated.load(std::sync::atomic::Ordering::Relaxed) {
                migrate().await?;
                migrated.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            ping().await
        })
    }
}

/// Serves `api` with health and reflection until `shutdown` completes. Then
/// it sends `true` on `stop` (for the caller's background tasks), turns
/// NOT_SERVING, goes on serving for the drain delay, stops accepting, and
/// returns once in-flight calls are done.
pub async fn serve<F>(
    api: Routes,
    options: ServerOptions,
    readiness: F,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    stop: watch::Sender<bool>,
) -> Result<(), ServeError>
where
    F: FnMut() -> Check + Send + 'static,
{
    let services = options.services;
    let drain_delay = options.drain_delay;
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, services, ServingStatus::NotServing).await;
    let ready_task = tokio::spawn(watch_readiness(
        readiness,
        health.clone(),
        services,
        stop.subscribe(),
    ));
    let routes = api
        .add_service(health_service)
        .add_service(reflection_service(services)?)
        .add_service(reflection_service_v1alpha(services)?);

    let on_shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
        set_health(&health, services, ServingStatus::NotServing).await;
        // Clients and endpoints take a while to drop this instance (health
        // checks, DNS); calls that arrive meanwhile are still served.
        if !drain_delay.is_zero() {
            tracing::info!(
                ?drain_delay,
                "NOT_SERVING; serving on while clients move away"
            );
            tokio::time::sleep(drain_delay).await;
        }
    };
    let result = Server::builder()
        // tonic also honours a shorter grpc-timeout sent by the client.
        .timeout(options.timeout)
        // The server span (continuing the caller's trace) and the RPC metrics.
        .layer(crate::rpc_server::RpcServerLayer)
        // Bounds memory and database pressure under a flood; excess calls wait.
        .layer(GlobalConcurrencyLimitLayer::new(options.concurrency_limit))
        // Lets handlers carry the caller's deadline on to the calls they make.
        .layer(DeadlineLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming(listener), on_shutdown)
        .await;
    ready_task.abort();
    Ok(result?)
}

/// Ends a call: maps an error to its `Status` and logs it (the status code
/// lands on the call's span and metrics in [`crate::rpc_server`]).
pub fn reply<T, E: Into<tonic::Status>>(
    result: Result<T, E>,
) -> Result<tonic::Response<T>, tonic::Status> {
    match result {
        Ok(v) => Ok(tonic::Response::new(v)),
        Err(e) => {
            let status: tonic::Status = e.into();
            tracing::info!(code = ?status.code(), "call failed: {}", status.message());
            Err(status)
        }
    }
}
