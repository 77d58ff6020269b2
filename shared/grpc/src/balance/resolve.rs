//! Turning a service's host name and port into the addresses to balance
//! over: DNS in production, a table the tests can change.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

/// What a resolver answers.
pub type Resolved = Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>;

/// Turns a host name and port into socket addresses: DNS in production,
/// a table in tests.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self, host: &str, port: u16) -> Resolved;
}

/// The system resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct Dns;

impl Resolve for Dns {
    fn resolve(&self, host: &str, port: u16) -> Resolved {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    }
}

/// Names with fixed addresses that can be changed at run time (tests stand
/// in for DNS with it); an unknown name is an error, as NXDOMAIN would be.
#[derive(Debug, Clone, Default)]
pub struct Hosts(Arc<Mutex<HashMap<String, Vec<SocketAddr>>>>);

impl Hosts {
    pub fn new() -> Self {
        Self::default()
    }

    /// What `host` resolves to from now on.
    pub fn set(&self, host: &str, addrs: Vec<SocketAddr>) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(host.to_owned(), addrs);
    }
}

impl Resolve for Hosts {
    fn resolve(&self, host: &str, _port: u16) -> Resolved {
        let found = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(host)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no host {host}")));
        Box::pin(std::future::ready(found))
    }
}
