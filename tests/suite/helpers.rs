//! Starting the whole suite (user, auth, gateway) on ephemeral ports over
//! fresh databases, and a small HTTP/1.1 client for the gateway.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::{net::SocketAddr, time::Duration};
pub use suite_testkit::{Backend, TestDb};
use tokio::{sync::oneshot, task::JoinHandle};

pub struct Suite {
    pub gateway: SocketAddr,
    /// The gateway's REST client (the suite's `request`, `get`, ... are its).
    client: GatewayClient,
    /// The gateway's admin port (`/metrics`, `/livez`, `/readyz`).
    pub gateway_admin: SocketAddr,
    /// The user service's gRPC address.
    pub user: SocketAddr,
    /// The auth service's gRPC address.
    pub auth: SocketAddr,
    dbs: Vec<TestDb>,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), suite::SuiteError>>>,
}

pub async fn spawn_suite(backend: Backend) -> Option<Suite> {
    spawn_suite_with(backend, |_| {}).await
}

pub async fn spawn_suite_with(
    backend: Backend,
    tweak: impl FnOnce(&mut suite_gateway::Config),
) -> Option<Suite> {
    spawn_suite_on(backend, None, tweak).await
}

/// The suite with its events on the NATS at `nats_url` (else in-process).
pub async fn spawn_suite_on(
    backend: Backend,
    nats_url: Option<String>,
    tweak: impl FnOnce(&mut suite_gateway::Config),
) -> Option<Suite> {
    spawn_suite_tuned(backend, nats_url, tweak, |_| {}).await
}

/// [`spawn_suite_on`] with the user service's configuration tweaked too.
pub async fn spawn_suite_tuned(
    backend: Backend,
    nats_url: Option<String>,
    tweak: impl FnOnce(&mut suite_gateway::Config),
    tweak_user: impl FnOnce(&mut suite_user::Config),
) -> Option<Suite> {
    let user_db = TestDb::create(backend, "user").await?;
    let auth_db = TestDb::create(backend, "auth").await?;
    let dir = tempfile::tempdir().expect("dir");
    Some(start(vec![user_db, auth_db], dir, nats_url, tweak, tweak_user).await)
}

/// Runs the suite over `dbs` (the user's, the auth's) and `dir`.
async fn start(
    dbs: Vec<TestDb>,
    dir: tempfile::TempDir,
    nats_url: Option<String>,
    tweak: impl FnOnce(&mut suite_gateway::Config),
    tweak_user: impl FnOnce(&mut suite_user::Config),
) -> Suite {
    let config = suite::SuiteConfig {
        user_database_url: Some(dbs[0].database_url()),
        auth_database_url: Some(dbs[1].database_url()),
        gateway_admin_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..suite::SuiteConfig::on_free_ports(dir.path().to_owned())
    };
    let listeners = suite::Listeners::bind(&config).await.expect("bind");
    let gateway = listeners.gateway.local_addr().expect("addr");
    let gateway_admin = listeners
        .gateway_admin
        .as_ref()
        .expect("an admin listener")
        .local_addr()
        .expect("addr");
    let user = listeners.user.local_addr().expect("addr");
    let auth = listeners.auth.local_addr().expect("addr");
    let mut user_config = suite_testkit::hermetic::<suite_user::Config>();
    let mut auth_config = suite_testkit::hermetic::<suite_auth::Config>();
    user_config.password_hash_concurrency = Some(2);
    user_config.keys.jwks_refresh_min = Duration::from_secs(1);
    tweak_user(&mut user_config);
    let mut gateway_config = suite_testkit::hermetic::<suite_gateway::Config>();
    // The tests send many logins from one address; the limit tests set their own.
    gateway_config.auth_rate_limit_burst = 10_000;
    gateway_config.rate_limit_burst = 10_000;
    tweak(&mut gateway_config);
    user_config.events.nats_url = nats_url.clone();
    auth_config.events.nats_url = nats_url.clone();
    gateway_config.events.nats_url = nats_url;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(suite::run(
        config,
        user_config,
        auth_config,
        gateway_config,
        listeners,
        async {
            let _ = stopped.await;
        },
    ));
    let suite = Suite {
        gateway,
        client: GatewayClient { gateway },
        gateway_admin,
        user,
        auth,
        dbs,
        dir,
        stop: Some(stop),
        task: Some(task),
    };
    // Ready when the gateway's readiness (on its admin port) says both
    // services are SERVING.
    for _ in 0..400 {
        if send(gateway_admin, "GET", "/readyz", None, None)
            .await
            .is_ok_and(|r| r.status == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    suite
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub json: serde_json::Value,
}

/// A client of a gateway (the suite's, or another), borrowing nothing else.
pub struct GatewayClient {
    gateway: SocketAddr,
}

impl std::ops::Deref for Suite {
    type Target = GatewayClient;

    fn deref(&self) -> &GatewayClient {
        &self.client
    }
}

impl Suite {
    pub fn with_gateway(_suite: &Suite, gateway: SocketAddr) -> GatewayClient {
        GatewayClient { gateway }
    }
}

impl GatewayClient {
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Result<Reply, String> {
        send(
            self.gateway,
            method,
            path,
            token,
            body.map(|b| ("application/json", b.to_string())),
        )
        .await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Result<Reply, String> {
        self.request("GET", path, token, None).await
    }

    /// `POST path` with a refresh token (refresh, logout).
    pub async fn with_refresh_token(&self, path: &str, refresh_token: impl AsRef<str>) -> Reply {
        self.request(
            "POST",
            path,
            None,
            Some(serde_json::json!({ "refreshToken": refresh_token.as_ref() })),
        )
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A request with any content type and body text.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, String)>,
    ) -> Result<Reply, String> {
        send(self.gateway, method, path, token, body).await
    }
}

impl Suite {
    /// A token signed with the suite's own key (as an operator holding it
    /// could): for `sub`, with `roles`.
    pub fn mint(&self, sub: &str, roles: &[&str]) -> String {
        self.mint_claims(sub, roles, None, None)
    }

    /// An OAuth access token as the auth service issues one to the client
    /// `client_id`: for `sub`, with `roles`, granted `scope`.
    pub fn mint_oauth(&self, sub: &str, roles: &[&str], client_id: &str, scope: &str) -> String {
        self.mint_claims(sub, roles, Some(client_id), Some(scope))
    }

    fn mint_claims(
        &self,
        sub: &str,
        roles: &[&str],
        client_id: Option<&str>,
        scope: Option<&str>,
    ) -> String {
        let pem = std::fs::read_to_string(self.dir.path().join("auth-signing-key.pem"))
            .expect("the suite's signing key");
        let key = suite_tokens::SigningKey::from_pkcs8_pem_thumbprinted(&pem).expect("key");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        key.sign(&suite_tokens::Claims {
            iss: "suite-auth".into(),
            aud: suite_tokens::Audience::Many(vec!["suite".into(), "suite-user".into()]),
            sub: sub.into(),
            exp: now + 600,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            sid: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            client_id: client_id.map(str::to_owned),
            scope: scope.map(str::to_owned),
            amr: Vec::new(),
            auth_time: None,
            pat: false,
        })
        .expect("sign")
    }

    /// The suite's signing key (generated into its data directory).
    pub fn signing_key_file(&self) -> std::path::PathBuf {
        self.dir.path().join("auth-signing-key.pem")
    }

    /// The suite's data directory (its development mailbox is `mail/` in it).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The user service's database URL.
    pub fn user_database_url(&self) -> String {
        self.dbs[0].database_url().expose().to_owned()
    }

    /// The auth service's database URL.
    pub fn auth_database_url(&self) -> String {
        self.dbs[1].database_url().expose().to_owned()
    }

    /// A GET of the gateway's admin port: the status and the body's text.
    pub async fn admin_get(&self, path: &str) -> Result<(u16, String), String> {
        get_text(self.gateway_admin, path).await
    }

    pub async fn stop(mut self) {
        self.halt().await;
        for db in &self.dbs {
            db.drop_database().await;
        }
    }

    /// Stops the suite and starts it again (on new ports) over the same
    /// databases and data directory, as an operator's restart would.
    pub async fn restart(mut self) -> Suite {
        self.halt().await;
        let dbs = std::mem::take(&mut self.dbs);
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("dir"));
        start(dbs, dir, None, |_| {}, |_| {}).await
    }

    async fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("task").expect("clean stop");
        }
    }
}

/// A fresh HTTP/1.1 connection to `addr`, driven on a task of its own.
async fn connect(
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    Ok(sender)
}

/// One HTTP/1.1 `GET` on a fresh connection: the status and the body's text.
pub async fn get_text(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut sender = connect(addr).await?;
    let req = http::Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let (status, _, bytes) = read(resp).await?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// An answer's status, headers and whole body.
async fn read(
    resp: http::Response<hyper::body::Incoming>,
) -> Result<(u16, http::HeaderMap, Bytes), String> {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, headers, bytes))
}

/// One HTTP/1.1 request to a gateway, on a fresh connection.
async fn send(
    gateway: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
) -> Result<Reply, String> {
    send_with(gateway, method, path, token, body, &[]).await
}

pub async fn send_with(
    gateway: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
    extra: &[(&str, &str)],
) -> Result<Reply, String> {
    let mut sender = connect(gateway).await?;
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    for (name, value) in extra {
        req = req.header(*name, *value);
    }
    let body = match body {
        Some((content_type, text)) => {
            req = req.header("content-type", content_type);
            Full::new(Bytes::from(text))
        }
        None => Full::new(Bytes::new()),
    };
    let resp = sender
        .send_request(req.body(body).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| e.to_string())?;
    let (status, headers, bytes) = read(resp).await?;
    let json = if bytes.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&bytes)))?
    };
    Ok(Reply {
        status,
        headers,
        json,
    })
}

/// Registers a user over REST; the answer, which must be 201.
pub async fn register_as(s: &Suite, username: &str, email: &str, password: &str) -> Reply {
    let r = s
        .request(
            "POST",
            "/api/v1/users",
            None,
            Some(serde_json::json!({"username": username, "email": email, "password": password})),
        )
        .await
        .expect("register");
    assert_eq!(r.status, 201, "{}", r.json);
    r
}

/// Logs `name` in through the gateway (asserting 200): the reply's JSON.
pub async fn login(s: &Suite, name: &str, password: &str) -> serde_json::Value {
    let r = s
        .request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(serde_json::json!({"login": name, "password": password})),
        )
        .await
        .expect("login");
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

/// Another gateway replica beside the launcher's (same services), with
/// `tweak` applied to its configuration; returns once it is ready.
pub async fn another_gateway(
    s: &Suite,
    tweak: impl FnOnce(&mut suite_gateway::Config),
) -> SocketAddr {
    let mut config = suite_testkit::hermetic::<suite_gateway::Config>();
    config.user_service_url = format!("http://{}", s.user);
    config.auth_service_url = format!("http://{}", s.auth);
    config.auth_rate_limit_burst = 10_000;
    config.rate_limit_burst = 10_000;
    tweak(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let admin_addr = admin.local_addr().expect("addr");
    tokio::spawn(suite_gateway::serve_with_admin(
        config,
        listener,
        Some(admin),
        std::future::pending(),
    ));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !get_text(admin_addr, "/readyz")
        .await
        .is_ok_and(|(status, _)| status == 200)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the other gateway never got ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    addr
}
