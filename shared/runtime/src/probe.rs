//! `<binary> healthcheck`: the probes a container runtime without a shell
//! (distroless images, compose) can run: the binary itself asks its own
//! server. Exit status 0 when healthy. Also the one gRPC health check
//! ([`check_health`]) that readiness, balancing and `suitectl health` share.

use std::{net::SocketAddr, time::Duration};

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The address to reach a server listening on `listen` from the same host
/// (`0.0.0.0`/`::` become loopback).
fn local(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if listen.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
}

/// SERVING on the gRPC health protocol for `service` at `listen`.
pub async fn grpc(listen: SocketAddr, service: &str) -> Result<(), String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", local(listen)))
        .map_err(|e| e.to_string())?
        .connect_timeout(PROBE_TIMEOUT)
        .connect_lazy();
    match check_health(channel, service, PROBE_TIMEOUT).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(format!("{service} is not SERVING")),
        Err(s) => Err(format!("health check failed: {}", s.message())),
    }
}

/// HTTP 200 from `GET path` at `listen`.
pub async fn http(listen: SocketAddr, path: &str) -> Result<(), String> {
    let check = async {
        let stream = tokio::net::TcpStream::connect(local(listen))
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let request = http::Request::get(path)
            .header(http::header::HOST, "localhost")
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        if response.status() == http::StatusCode::OK {
            Ok(())
        } else {
            Err(format!("GET {path}: HTTP {}", response.status()))
        }
    };
    tokio::time::timeout(PROBE_TIMEOUT, check)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// The exit status of a `healthcheck` subcommand, reporting failures on stderr.
pub fn exit_code(binary: &str, result: Result<(), String>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{binary}: unhealthy: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Asks the server behind `channel` whether `service` ("" for the whole
/// server) is SERVING, within `limit`: `Ok(serving)`, or the call's error
/// (a timeout is DeadlineExceeded). One check for readiness, balancing and
/// the `healthcheck` subcommands.
pub async fn check_health(
    channel: tonic::transport::Channel,
    service: &str,
    limit: Duration,
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
