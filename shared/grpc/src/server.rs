//! Running a tonic server the way every service of the suite does: health
//! (NOT_SERVING until ready, and again from the stop signal on), reflection
//! for the services served, a per-RPC span, limits, and a graceful drain.

use crate::deadline::DeadlineLayer;
use crate::{
    health::{ServingStatus, set_health, watch_readiness},
    reflection::{reflection_service, reflection_service_v1alpha},
};
use std::{sync::Arc, time::Duration};
use suite_runtime::readiness::{Readiness, migrate_then_ping};
use tokio::{net::TcpListener, sync::watch};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{service::Routes, transport::Server};
use tower::limit::GlobalConcurrencyLimitLayer;

/// How a service is served.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The binary's name (`suite-user`): its spans' service.
    pub name: &'static str,
    /// The gRPC services of this server: health reports on them and reflection lists them.
    pub services: &'static [&'static str],
    /// Upper bound on any call (a shorter client `grpc-timeout` wins).
    pub timeout: Duration,
    /// Most calls served at once; more wait.
    pub concurrency_limit: usize,
    /// How long to go on serving, NOT_SERVING, after the stop signal.
    pub drain_delay: Duration,
    /// Where the operators' HTTP port (`/metrics`, `/livez`) listens, if anywhere.
    pub admin_addr: Option<std::net::SocketAddr>,
    /// What one connection may hold, against slow or hostile clients.
    pub connection: ConnectionLimits,
}

/// The per-connection limits tonic's server offers.
///
/// Not offered by tonic (0.14): a deadline for the HTTP/2 preface and
/// handshake. A client that connects and sends nothing (or trickles the
/// preface) keeps its connection: keepalive pings start after the
/// handshake, and hyper defers a GOAWAY (`max_connection_age`'s, or the
/// stop's) to a connection still in its handshake until that ends. Only TCP
/// keepalive drops such a peer, once it has vanished; [`serve`] does not
/// wait for it past the drain.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A ping after this long without a frame from the peer...
    pub http2_keepalive_interval: Duration,
    /// ...unanswered for this long closes the connection.
    pub http2_keepalive_timeout: Duration,
    pub max_concurrent_streams: u32,
    pub max_header_list_bytes: u32,
    /// GOAWAY after this long (`None`: never).
    pub max_connection_age: Option<Duration>,
    pub tcp_keepalive: Duration,
}

/// Streams a client may open and reset before they are accepted, before the
/// connection is closed (HTTP/2 rapid reset, CVE-2023-44487): h2's default,
/// stated so that a dependency update cannot lift it unnoticed.
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// Past the call timeout, for the last responses to be written.
const DRAIN_SLACK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("ADMIN_ADDR: {0}")]
    Admin(std::io::Error),
}

/// Serves `api` with health and reflection until `shutdown` completes,
/// SERVING while `readiness` passes. Then it turns NOT_SERVING, goes on
/// serving for the drain delay, stops accepting, and returns once in-flight
/// calls are done (at most the call timeout and a second later).
pub async fn serve<R: Readiness + ?Sized>(
    api: Routes,
    options: ServerOptions,
    readiness: Arc<R>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop, stopped) = watch::channel(false);
    let services = options.services;
    let drain_delay = options.drain_delay;
    // Metrics and liveness for operators, for as long as the server runs.
    let _admin = suite_runtime::admin::spawn_admin(options.admin_addr)
        .await
        .map_err(ServeError::Admin)?;
    tracing::info!(addr = ?listener.local_addr().ok(), ?services, "listening");
    let (health, health_service) = tonic_health::server::health_reporter();
    set_health(&health, services, ServingStatus::NotServing).await;
    let ready_task = tokio::spawn(watch_readiness(
        migrate_then_ping(readiness),
        health.clone(),
        services,
        stopped,
    ));
    let routes = api
        .add_service(health_service)
        .add_service(reflection_service(services)?)
        .add_service(reflection_service_v1alpha(services)?);

    // Set once the drain begins (after the drain delay).
    let (draining_tx, mut draining) = watch::channel(false);
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
        let _ = draining_tx.send(true);
    };
    let limits = options.connection;
    let mut server = Server::builder()
        // tonic also honours a shorter grpc-timeout sent by the client.
        .timeout(options.timeout)
        // A peer that stops answering pings (gone, or stalling on purpose) is closed.
        .http2_keepalive_interval(Some(limits.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(limits.http2_keepalive_timeout))
        // One connection cannot take every call slot or send huge header blocks.
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_header_list_size(limits.max_header_list_bytes)
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_ACCEPT_RESET_STREAMS));
    if let Some(age) = limits.max_connection_age {
        // Not `max_connection_age_grace`: with it, tonic 0.14 sends no GOAWAY
        // at the age but cuts the connection, calls and all, at age + grace.
        server = server.max_connection_age(age);
    }
    // tonic's `tcp_keepalive` is ignored with our own listener: set on each
    // accepted socket instead (with TCP_NODELAY, tonic's default, likewise).
    let incoming = tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(limits.tcp_keepalive));
    let serving = server
        // The server span (continuing the caller's trace) and the RPC metrics.
        .layer(suite_telemetry::grpc_server::RpcServerLayer::new(
            options.name,
            services,
        ))
        // Bounds memory and database pressure under a flood; excess calls wait.
        .layer(GlobalConcurrencyLimitLayer::new(options.concurrency_limit))
        // Lets handlers carry the caller's deadline on to the calls they make.
        .layer(DeadlineLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, on_shutdown);
    // tonic waits for every connection to close, and one still in its HTTP/2
    // handshake (a client that connected and sent nothing) never does. Every
    // call ends within the timeout, so past it the drain is over anyway.
    let drain_limit = options.timeout + DRAIN_SLACK;
    let result = tokio::select! {
        result = serving => result,
        () = async {
            let _ = draining.wait_for(|d| *d).await;
            tokio::time::sleep(drain_limit).await;
        } => {
            tracing::warn!(?drain_limit, "connections still open after the drain; stopping without them");
            Ok(())
        }
    };
    ready_task.abort();
    tracing::info!(?services, "stopped");
    Ok(result?)
}

/// Ends a call: maps an error to its `Status` and logs it, once, with the
/// detail the client never sees (the status code also lands on the call's
/// span and metrics in [`suite_telemetry::grpc_server`]).
pub fn reply<T, E>(result: Result<T, E>) -> Result<tonic::Response<T>, tonic::Status>
where
    E: Into<tonic::Status> + std::fmt::Display,
{
    use tonic::Code;
    match result {
        Ok(v) => Ok(tonic::Response::new(v)),
        Err(e) => {
            let detail = e.to_string();
            let status: tonic::Status = e.into();
            let code = status.code();
            match code {
                Code::Internal | Code::Unknown | Code::DataLoss => {
                    tracing::error!(?code, error = %detail, "call failed");
                }
                Code::Unavailable | Code::DeadlineExceeded => {
                    tracing::warn!(?code, error = %detail, "call failed");
                }
                _ => tracing::info!(?code, "call failed: {}", status.message()),
            }
            Err(status)
        }
    }
}

/// The incoming-connection stream of a bound listener, for
/// `serve_with_incoming_shutdown` (tests bind port 0 and read the address first).
pub fn incoming(listener: TcpListener) -> TcpListenerStream {
    TcpListenerStream::new(listener)
}
