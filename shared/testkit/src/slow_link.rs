//! A TCP link that delays replies and can freeze its connections, to play a
//! slow or half-open network between a client and its server.

use std::{net::SocketAddr, time::Duration};

/// A TCP link to a server (a Redis) that delivers every reply `delay` late,
/// as a loaded machine's round trip would, and whose open connections can be
/// frozen: they stay open but carry nothing either way, like a connection
/// whose peer vanished without closing it (a half-open connection).
/// Connections made after a freeze work. The upstream closing a connection
/// closes the client's.
pub struct SlowLink {
    pub addr: SocketAddr,
    epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
    tasks: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl SlowLink {
    /// Listens on a free port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let addr = listener.local_addr().expect("bound");
        let epoch = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let tasks = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (e, t) = (epoch.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mine = e.load(std::sync::atomic::Ordering::SeqCst);
                let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                    continue; // dropping the client closes it, as a refused connection would
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up = tokio::spawn(pump(cr, sw, Duration::ZERO, e.clone(), mine));
                let down = tokio::spawn(pump(sr, cw, delay, e.clone(), mine));
                if let Ok(mut tasks) = t.lock() {
                    tasks.extend([up.abort_handle(), down.abort_handle()]);
                }
            }
        });
        if let Ok(mut tasks) = tasks.lock() {
            tasks.push(accept.abort_handle());
        }
        Self { addr, epoch, tasks }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// The connections open now stop carrying anything (and stay open).
    pub fn freeze(&self) {
        self.epoch.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Copies `from` to `to`, each chunk `delay` late, until either end closes
/// or the link's epoch moves past `mine` (then holds both ends open, idle).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
    mine: u64,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let frozen = || epoch.load(std::sync::atomic::Ordering::SeqCst) != mine;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) if frozen() => {
                // A vanished peer sends no close either.
                let _held = (from, to);
                std::future::pending::<()>().await;
                return;
            }
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if frozen() {
            // Half-open: nothing more, either way, and no close.
            let _held = (from, to);
            std::future::pending::<()>().await;
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for SlowLink {
    fn drop(&mut self) {
        if let Ok(tasks) = self.tasks.lock() {
            for t in tasks.iter() {
                t.abort();
            }
        }
    }
}
