//! A service a test started on a task of its own, with its address, and
//! how to stop it.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

/// A server a test started on a task of its own, and how to stop it.
pub struct Server<E> {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    /// The server's task (taken by a test that awaits it by itself).
    pub task: Option<JoinHandle<Result<(), E>>>,
}

/// The shutdown signal a [`Server`] hands its `serve`: completes when the
/// test asks the server to stop (or drops it).
pub struct Shutdown(oneshot::Receiver<()>);

impl Future for Shutdown {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl<E: std::fmt::Debug + Send + 'static> Server<E> {
    /// Spawns `serve(listener, shutdown)`, e.g. a service's `serve` with its
    /// configuration.
    pub fn start<F>(listener: TcpListener, serve: impl FnOnce(TcpListener, Shutdown) -> F) -> Self
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let addr = listener.local_addr().expect("a bound listener's address");
        let (stop, stopped) = oneshot::channel();
        Self {
            addr,
            stop: Some(stop),
            task: Some(tokio::spawn(serve(listener, Shutdown(stopped)))),
        }
    }

    /// Sends the stop signal without waiting (once; later calls do nothing).
    pub fn trigger_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the server and waits for it, which must end cleanly (once;
    /// later calls do nothing).
    pub async fn stop(&mut self) {
        self.trigger_stop();
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }
}
