//! `suitectl health`: every replica of each service (every address its
//! host name resolves to), asked with the gRPC health check.

use super::{connect::channel, error::CtlError};
use std::time::Duration;

/// One replica's answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Replica {
    pub service: &'static str,
    pub address: String,
    /// `SERVING`, `NOT_SERVING`, or why it could not be asked.
    pub status: String,
    pub serving: bool,
}

/// The services and the health-check name each serves.
pub fn services(user_url: &str, auth_url: &str) -> [(&'static str, String, &'static str); 2] {
    [
        ("user", user_url.to_owned(), "suite.user.v1.UserService"),
        ("auth", auth_url.to_owned(), "suite.auth.v1.AuthService"),
    ]
}

/// Checks every address `url`'s host resolves to.
pub async fn check(
    service: &'static str,
    url: &str,
    name: &str,
    limit: Duration,
) -> Result<Vec<Replica>, CtlError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| CtlError::Usage(format!("{url:?} is not a URL: {e}")))?;
    let host = uri
        .host()
        .ok_or_else(|| CtlError::Usage(format!("{url:?} names no host")))?;
    let port = uri.port_u16().unwrap_or(80);
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<std::net::SocketAddr> = match tokio::net::lookup_host((host, port)).await {
        Ok(found) => found.collect(),
        Err(e) => {
            return Ok(vec![Replica {
                service,
                address: format!("{host}:{port}"),
                status: format!("cannot resolve: {e}"),
                serving: false,
            }]);
        }
    };
    let mut replicas = Vec::new();
    for addr in addresses {
        let status = match channel(&format!("{scheme}://{addr}"), limit) {
            Ok(ch) => match suite_runtime::probe::check_health(ch, name, limit).await {
                Ok(true) => "SERVING".to_owned(),
                Ok(false) => "NOT_SERVING".to_owned(),
                Err(s) => format!("unreachable: {}", super::error::describe(&s)),
            },
            Err(e) => e.to_string(),
        };
        replicas.push(Replica {
            service,
            address: addr.to_string(),
            serving: status == "SERVING",
            status,
        });
    }
    Ok(replicas)
}
