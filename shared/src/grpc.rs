//! gRPC server plumbing every service uses: health, reflection, listeners.

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

pub use tonic_health::server::HealthReporter;

/// A reflection builder that describes the whole contract (and health) but
/// lists only `services` and the standard ones this server really serves.
fn reflection_builder(services: &[&str]) -> tonic_reflection::server::Builder<'static> {
    let mut builder = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(suite_proto::FILE_DESCRIPTOR_SET)
        // Health is served too, so describe it (grpcurl can then call it by name).
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
    for name in services.iter().chain(&[
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]) {
        builder = builder.with_service_name(*name);
    }
    builder
}

/// The reflection service (v1), listing `services` (plus health and
/// reflection), so `grpcurl` and other generic clients can find and call them.
pub fn reflection_service(
    services: &[&str],
) -> Result<
    tonic_reflection::server::v1::ServerReflectionServer<
        impl tonic_reflection::server::v1::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder(services).build_v1()
}

/// The same on the older v1alpha protocol, which many clients (Python's
/// grpcio-reflection, older grpcurl) still speak.
pub fn reflection_service_v1alpha(
    services: &[&str],
) -> Result<
    tonic_reflection::server::v1alpha::ServerReflectionServer<
        impl tonic_reflection::server::v1alpha::ServerReflection,
    >,
    tonic_reflection::server::Error,
> {
    reflection_builder(services).build_v1alpha()
}

/// The incoming-connection stream of a bound listener, for
/// `serve_with_incoming_shutdown` (tests bind port 0 and read the address first).
pub fn incoming(listener: TcpListener) -> TcpListenerStream {
    TcpListenerStream::new(listener)
}

/// Binds a TCP listener, naming the address in the error.
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

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

/// A database URL without its password, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{}:***{}", &url[..s + 3], user, &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// Asks the server behind `channel` whether `service` ("" for the whole
/// server) is SERVING, within `limit`: `Ok(serving)`, or the call's error
/// (a timeout is DeadlineExceeded). One check for readiness, balancing and
/// the `healthcheck` subcommands.
pub async fn check_health(
    channel: tonic::transport::Channel,
    service: &str,
    limit: std::time::Duration,
) -> Result<bool, tonic::Status> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let mut client = HealthClient::new(channel);
    let check = client.check(HealthCheckRequest {
        service: service.to_owned(),
    });
    match tokio::time::timeout(limit, check).await {
        Ok(Ok(reply)) => Ok(reply.get_ref().status() == ServingStatus::Serving),
        Ok(Err(status)) => Err(status),
        Err(_) => Err(tonic::Status::deadline_exceeded("health check timed out")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("sqlite:data/x.db"), "sqlite:data/x.db");
    }
}
