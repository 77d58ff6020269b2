//! Binding the listeners of a process (its servers' and its admin port).

use tokio::net::TcpListener;

/// Binds a TCP listener, naming the address in the error.
pub async fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
