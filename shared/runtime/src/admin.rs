//! The operators' HTTP port of a binary (`ADMIN_ADDR`): `GET /metrics`
//! (the process's Prometheus text) and `GET /livez` (the process answers);
//! the gateway adds its `/readyz`. Never on a public port.

use suite_telemetry::metrics;

/// The operators' HTTP port of a binary (a gRPC service or the gateway).
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// Address of the admin HTTP server (`GET /metrics`, Prometheus text;
    /// `GET /livez`, liveness; the gateway's `GET /readyz`, readiness).
    /// Unset: no admin server.
    #[arg(long, env = "ADMIN_ADDR")]
    pub admin_addr: Option<std::net::SocketAddr>,
}

/// The admin routes, for mounting elsewhere too.
pub fn admin_router() -> axum::Router {
    use axum::routing::get;
    axum::Router::new()
        .route("/metrics", get(metrics_response))
        .route(
            "/livez",
            get(|| async { axum::Json(serde_json::json!({ "status": "ok" })) }),
        )
}

/// `GET /metrics`.
pub async fn metrics_response() -> impl axum::response::IntoResponse {
    (
        [(http::header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        metrics::metrics().encode(),
    )
}

/// A running admin server; dropping it stops the server.
#[derive(Debug)]
pub struct AdminServer(Option<tokio::task::JoinHandle<()>>);

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

/// Binds `addr` (if set) and serves the admin routes there until the
/// returned handle is dropped.
pub async fn spawn_admin(addr: Option<std::net::SocketAddr>) -> std::io::Result<AdminServer> {
    let Some(addr) = addr else {
        return Ok(AdminServer(None));
    };
    let listener = crate::listen::bind(addr).await?;
    Ok(spawn_admin_on(listener, admin_router()))
}

/// Serves `router` (the [`admin_router`], with whatever a binary adds to
/// it, like the gateway's `/readyz`) on a bound `listener` until the
/// returned handle is dropped.
pub fn spawn_admin_on(listener: tokio::net::TcpListener, router: axum::Router) -> AdminServer {
    tracing::info!(addr = ?listener.local_addr().ok(), "admin server listening");
    AdminServer(Some(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "admin server failed");
        }
    })))
}
