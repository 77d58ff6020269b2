//! The HTTP server loop: hyper's (HTTP/1.1 and HTTP/2) with what
//! `axum::serve` does not offer: a bound on the time to read a request's
//! head (a slow client is closed), a cap on open connections, and a stop
//! that loses no request.
//!
//! The stop, from the stop signal on (readiness already says 503, see
//! `crate::serve_with_admin`):
//!
//! 1. every HTTP/1.1 answer carries `Connection: close` (hyper closes the
//!    connection once it is written, and the client opens its next one
//!    elsewhere), and every HTTP/2 connection gets a GOAWAY (its streams in
//!    flight finish);
//! 2. new connections are still accepted for [`Drain::delay`] (for load
//!    balancers that act on readiness), then the listener closes;
//! 3. an idle HTTP/1.1 connection stays open [`Drain::idle_grace`] longer:
//!    HTTP/1.1 has no GOAWAY, and closing it at once would reset a request
//!    its client is sending at that moment (the request has no answer, and
//!    the client cannot tell whether it was acted on). A request that
//!    arrives meanwhile gets its answer, with `Connection: close`;
//! 4. then every connection still open is closed as soon as its requests are
//!    answered, and those not done within [`Drain::timeout`] are dropped.

use axum::{Router, extract::ConnectInfo};
use http::{HeaderValue, StatusCode, Version, header::CONNECTION};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulConnection},
    service::TowerToHyperService,
};
use std::{sync::Arc, time::Duration};
use tokio::{
    net::TcpListener,
    sync::{Semaphore, watch},
};
use tower::ServiceExt;

/// What one client may hold of the server: the time to send a request's
/// head, and (all clients together) the open connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: u32,
}

/// How a listener stops (see the module's documentation).
#[derive(Debug, Clone, Copy)]
pub struct Drain {
    /// From the stop signal: how long new connections are still accepted.
    pub delay: Duration,
    /// Then: how long an idle HTTP/1.1 connection stays open for a request
    /// already on its way.
    pub idle_grace: Duration,
    /// Then: how long requests still in flight have to finish.
    pub timeout: Duration,
}

/// Where the server is in its stop; each connection acts on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// `Connection: close` on HTTP/1.1 answers, GOAWAY on HTTP/2.
    Stopping,
    /// Every connection closes once its requests are answered (an idle
    /// HTTP/1.1 one at once).
    Closing,
    /// The drain is over: connections still open are dropped.
    Abandoned,
}

/// What the server loop hands each connection.
struct Serving {
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    open: Arc<Semaphore>,
    phase: watch::Receiver<Phase>,
}

/// Serves `router` on `listener` until `shutdown` completes, then stops as
/// the module's documentation says.
pub async fn serve(
    router: Router,
    listener: TcpListener,
    limits: ConnectionLimits,
    drain: Drain,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let (phase, watching) = watch::channel(Phase::Serving);
    let serving = Serving {
        builder,
        router,
        open: Arc::new(Semaphore::new(limits.max_connections as usize)),
        phase: watching,
    };
    accept_until(&listener, &serving, shutdown).await;
    phase.send_replace(Phase::Stopping);
    if !drain.delay.is_zero() {
        tracing::info!(delay = ?drain.delay, "stopping; accepting on while clients move away");
        accept_until(&listener, &serving, tokio::time::sleep(drain.delay)).await;
    }
    drop(listener);
    tracing::info!(
        idle_grace = ?drain.idle_grace,
        "stopped accepting; answering what arrives on open connections with Connection: close"
    );
    // Over early once every client has had its last answer and gone.
    let all_closed = async {
        // Every permit back: no connection left.
        let _ = serving.open.acquire_many(limits.max_connections).await;
    };
    tokio::select! {
        () = all_closed => return,
        () = tokio::time::sleep(drain.idle_grace) => {}
    }
    phase.send_replace(Phase::Closing);
    let all_closed = async {
        let _ = serving.open.acquire_many(limits.max_connections).await;
    };
    if tokio::time::timeout(drain.timeout, all_closed)
        .await
        .is_err()
    {
        // Clients that do not read their answers, for instance: every
        // request has had its budget by now.
        tracing::warn!(timeout = ?drain.timeout, "connections still open after the drain; stopping without them");
    }
    phase.send_replace(Phase::Abandoned);
}

/// Accepts connections (each served on a task of its own) until `until`
/// completes.
async fn accept_until(listener: &TcpListener, serving: &Serving, until: impl Future<Output = ()>) {
    let mut until = std::pin::pin!(until);
    loop {
        // At the cap, connections wait in the listen backlog.
        let permit = tokio::select! {
            permit = serving.open.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = &mut until => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: pause, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut until => return,
        };
        // Whether this connection speaks HTTP/2: known from its first
        // request (hyper-util's auto builder does not say).
        let http2 = Arc::new(watch::Sender::new(false));
        let service = serving
            .router
            .clone()
            .map_request({
                let http2 = http2.clone();
                move |mut req: http::Request<hyper::body::Incoming>| {
                    if req.version() == Version::HTTP_2 {
                        http2.send_if_modified(|seen| !std::mem::replace(seen, true));
                    }
                    // The handlers see the peer as `axum::serve` would show it.
                    req.extensions_mut().insert(ConnectInfo(peer));
                    req
                }
            })
            .map_response({
                let (http2, phase) = (http2.clone(), serving.phase.clone());
                move |mut resp: axum::response::Response| {
                    // Checked at the answer, not at the request: a request
                    // in flight when the stop begins is the connection's last.
                    let stopping = *phase.borrow() >= Phase::Stopping;
                    // HTTP/2 forbids the header (its GOAWAY says it); a 101
                    // hands the connection over to another protocol.
                    if stopping
                        && !*http2.borrow()
                        && resp.status() != StatusCode::SWITCHING_PROTOCOLS
                    {
                        resp.headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    resp
                }
            });
        let connection = serving
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let phase = serving.phase.clone();
        tokio::spawn(async move {
            if let Err(e) = drive(connection, phase, &http2).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// Runs one connection through the phases of the stop.
async fn drive<C: GracefulConnection>(
    connection: C,
    mut phase: watch::Receiver<Phase>,
    http2: &watch::Sender<bool>,
) -> Result<(), C::Error> {
    let mut connection = std::pin::pin!(connection);
    // A closed channel means the server loop is gone: as good as any phase.
    tokio::select! {
        result = connection.as_mut() => return result,
        _ = phase.wait_for(|p| *p >= Phase::Stopping) => {}
    }
    // HTTP/2 has GOAWAY, sent at once (hyper's graceful shutdown: streams
    // the client opens before it sees it are still served). HTTP/1.1 has
    // nothing like it: its answers now carry `Connection: close`, and an idle
    // connection is left open until the grace is over.
    let mut speaks_http2 = http2.subscribe();
    tokio::select! {
        result = connection.as_mut() => return result,
        _ = phase.wait_for(|p| *p >= Phase::Closing) => {}
        _ = speaks_http2.wait_for(|h2| *h2) => {}
    }
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        result = connection.as_mut() => result,
        _ = phase.wait_for(|p| *p >= Phase::Abandoned) => Ok(()),
    }
}
