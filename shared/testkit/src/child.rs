//! Servers of a test's own as child processes (NATS with JetStream, Redis),
//! each on a free port with a temporary directory, which the test can stop
//! and start again (same port, same directory) to play an outage.

use std::{
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// A server binary run as a child process on a port and directory of its
/// own, killed when dropped.
pub struct ChildServer {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    /// What to run, given the port and the directory.
    command: fn(u16, &Path) -> Command,
    /// What to install when it does not start.
    name: &'static str,
    child: Option<Child>,
}

impl ChildServer {
    /// Starts one (`command` for a port and directory) and waits until it
    /// accepts connections.
    pub fn start(name: &'static str, command: fn(u16, &Path) -> Command) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir: tempfile::tempdir().expect("temp dir"),
            command,
            name,
            child: None,
        };
        server.start_again();
        server
    }

    /// Starts it (again, after [`ChildServer::stop`]) on the same port and
    /// directory, and waits until it accepts connections.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = (self.command)(self.addr.port(), self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start ({e}): is it installed?", self.name));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(self.addr).is_err() {
            assert!(Instant::now() < deadline, "{} did not start", self.name);
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills it (as a crash would) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `nats-server -js` of the test's own, its store in the directory.
pub struct NatsServer(ChildServer);

/// The NATS binary: `NATS_SERVER_BIN`, else where Debian puts it, else
/// `nats-server` on the PATH.
fn nats_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("NATS_SERVER_BIN") {
        return bin.into();
    }
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .unwrap_or_else(|| "nats-server".into())
}

impl NatsServer {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Self {
        Self(ChildServer::start(
            "nats-server (Debian's nats-server, or NATS_SERVER_BIN)",
            |port, dir| {
                let mut c = Command::new(nats_binary());
                c.args(["-js", "-a", "127.0.0.1", "-p"])
                    .arg(port.to_string())
                    .arg("-sd")
                    .arg(dir);
                c
            },
        ))
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://{}", self.0.addr)
    }
}

/// A `redis-server` of the test's own (nothing kept on disk).
pub struct RedisServer(ChildServer);

impl RedisServer {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Self {
        Self(ChildServer::start(
            "redis-server (Debian's redis-server, or REDIS_SERVER_BIN)",
            |port, dir| {
                let bin =
                    std::env::var("REDIS_SERVER_BIN").unwrap_or_else(|_| "redis-server".into());
                let mut c = Command::new(bin);
                c.args([
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--port",
                ])
                .arg(port.to_string())
                .arg("--dir")
                .arg(dir);
                c
            },
        ))
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.0.addr)
    }
}

/// Both are a [`ChildServer`] with a URL: `addr`, `stop` and `start_again`
/// are the child's.
macro_rules! child_deref {
    ($($t:ty),*) => {$(
        impl std::ops::Deref for $t {
            type Target = ChildServer;
            fn deref(&self) -> &ChildServer {
                &self.0
            }
        }
        impl std::ops::DerefMut for $t {
            fn deref_mut(&mut self) -> &mut ChildServer {
                &mut self.0
            }
        }
    )*};
}
child_deref!(NatsServer, RedisServer);
