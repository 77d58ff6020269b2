//! gRPC health: reporting each served service's status as its readiness
//! changes (asking a server is `suite_runtime::probe::check_health`).

pub use tonic_health::server::HealthReporter;

pub use tonic_health::ServingStatus;

/// Sets the overall status (`""`) and each named service's.
pub async fn set_health(health: &HealthReporter, services: &[&str], status: ServingStatus) {
    health.set_service_status("", status).await;
    for s in services {
        health.set_service_status(*s, status).await;
    }
}

/// How often a ready service is re-checked, and a not-ready one retried.
const READY_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);
const NOT_READY_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// Runs `check` (e.g. migrate once, then ping the database) until `stop`
/// turns true, reporting SERVING while it succeeds and NOT_SERVING while it
/// fails; logs each change once.
pub async fn watch_readiness<F, Fut>(
    mut check: F,
    health: HealthReporter,
    services: &'static [&'static str],
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut was_ready = false;
    let mut logged_failure = false;
    loop {
        let ready = match check().await {
            Ok(()) => true,
            Err(e) => {
                if !logged_failure {
                    tracing::warn!(error = %e, "not ready");
                    logged_failure = true;
                }
                false
            }
        };
        if ready {
            logged_failure = false;
        }
        if *stop.borrow() {
            return;
        }
        if ready != was_ready {
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            tracing::info!(%status, "readiness changed");
            set_health(&health, services, status).await;
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
