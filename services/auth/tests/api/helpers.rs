//! Starting the real user and auth services on ephemeral ports, each over a
//! fresh database of the chosen kind, wired to each other over gRPC.

use std::{net::SocketAddr, time::Duration};
use suite_proto::{
    auth::{
        LoginRequest, LoginResponse, auth_service_client::AuthServiceClient,
        client_service_client::ClientServiceClient, consent_service_client::ConsentServiceClient,
        o_auth_service_client::OAuthServiceClient,
    },
    user::{CreateUserRequest, User, user_service_client::UserServiceClient},
};
use suite_tokens::SigningKey;
use tokio::net::TcpListener;
use tonic::{Request, Status, transport::Channel};
use uuid::Uuid;

pub const PASSWORD: &str = "tangerine velvet orbit 42";

pub use suite_testkit::{Backend, Server, TestDb};

pub async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let a = l.local_addr().expect("addr");
    (l, a)
}

pub fn start_user(
    config: suite_user::Config,
    listener: TcpListener,
) -> Server<suite_user::StartError> {
    Server::start(listener, |l, shutdown| {
        suite_user::serve(config, l, shutdown)
    })
}

pub fn start_auth(
    config: suite_auth::Config,
    listener: TcpListener,
) -> Server<suite_auth::StartError> {
    Server::start(listener, |l, shutdown| {
        suite_auth::serve(config, l, shutdown)
    })
}

pub fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy()
}

pub async fn wait_serving(addr: SocketAddr) {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    for _ in 0..200 {
        if let Ok(r) = HealthClient::new(channel(addr))
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await
            && r.into_inner().status == 1
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{addr} never became SERVING");
}

/// The user service and one auth service, wired together.
pub struct Suite {
    pub key: SigningKey,
    pub user_db: TestDb,
    pub auth_db: TestDb,
    pub user: Server<suite_user::StartError>,
    pub auth: Server<suite_auth::StartError>,
    pub auth_config: suite_auth::Config,
    pub users: UserServiceClient<Channel>,
    pub client: AuthServiceClient<Channel>,
}

/// A directory for this test binary's files (the ID-token keys, generated
/// once: an RSA key takes a while), removed at exit by the OS's temp cleanup.
pub fn test_data_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        for (alg, file) in [
            (suite_tokens::IdTokenAlg::Rs256, "rsa.pem"),
            (suite_tokens::IdTokenAlg::Es256, "ec.pem"),
        ] {
            let key = suite_tokens::IdTokenKey::generate(alg).expect("id-token key");
            std::fs::write(dir.path().join(file), key.to_pem()).expect("write key");
        }
        dir
    })
    .path()
}

pub fn auth_config(db: &TestDb, user_addr: SocketAddr, key: &SigningKey) -> suite_auth::Config {
    let mut c = suite_testkit::hermetic::<suite_auth::Config>();
    c.database_url = db.database_url();
    c.user_service_url = format!("http://{user_addr}");
    c.signing_key = Some(key.to_pkcs8_pem().into());
    let dir = test_data_dir();
    c.data_dir = dir.to_owned();
    c.oidc_rsa_key_file = Some(dir.join("rsa.pem"));
    c.oidc_ec_key_file = Some(dir.join("ec.pem"));
    c
}

pub async fn spawn_suite(backend: Backend) -> Option<Suite> {
    spawn_suite_with(backend, |_| {}).await
}

pub async fn spawn_suite_with(
    backend: Backend,
    tweak: impl FnOnce(&mut suite_auth::Config),
) -> Option<Suite> {
    spawn_suite_tuned(backend, tweak, |_| {}).await
}

/// A suite whose services share one in-process event bus, as in the
/// launcher (the auth service acts on the user service's events).
pub async fn spawn_suite_on_one_bus(
    backend: Backend,
    tweak: impl FnOnce(&mut suite_auth::Config),
) -> Option<Suite> {
    let bus = suite_events::LocalBus::default();
    let (for_auth, for_user) = (bus.clone(), bus);
    spawn_suite_tuned(
        backend,
        |auth| {
            auth.events.local = Some(for_auth);
            tweak(auth);
        },
        |user| user.events.local = Some(for_user),
    )
    .await
}

/// A suite with both services' settings changed.
pub async fn spawn_suite_tuned(
    backend: Backend,
    tweak: impl FnOnce(&mut suite_auth::Config),
    tweak_user: impl FnOnce(&mut suite_user::Config),
) -> Option<Suite> {
    let user_db = TestDb::create(backend, "user").await?;
    let auth_db = TestDb::create(backend, "auth").await?;
    let key = SigningKey::generate_thumbprinted().expect("key");
    let (user_listener, user_addr) = listener().await;
    let (auth_listener, auth_addr) = listener().await;

    // The user service learns the keys from the auth service over gRPC.
    let mut user_config = suite_testkit::hermetic::<suite_user::Config>();
    user_config.database_url = user_db.database_url();
    user_config.mail.mail_dir = suite_testkit::temp_mail_dir();
    user_config.keys.jwks = Some(suite_tokens::jwks::JwksSource::grpc(auth_addr));
    user_config.keys.jwks_refresh_min = Duration::from_secs(1);
    user_config.password_hash_concurrency = Some(2);
    tweak_user(&mut user_config);
    let mut auth_config = auth_config(&auth_db, user_addr, &key);
    tweak(&mut auth_config);

    let user = start_user(user_config, user_listener);
    let auth = start_auth(auth_config.clone(), auth_listener);
    wait_serving(user_addr).await;
    wait_serving(auth_addr).await;
    Some(Suite {
        key,
        user_db,
        auth_db,
        user,
        auth,
        auth_config,
        users: UserServiceClient::new(channel(user_addr)),
        client: AuthServiceClient::new(channel(auth_addr)),
    })
}

pub fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    req
}

pub fn login_req(login: &str, password: &str) -> LoginRequest {
    LoginRequest {
        login: login.into(),
        password: password.into(),
        user_agent: "tests/1.0".into(),
    }
}

impl Suite {
    pub async fn register(&self, username: &str) -> User {
        self.users
            .clone()
            .create_user(CreateUserRequest {
                username: username.into(),
                email: format!("{username}@example.com"),
                password: PASSWORD.into(),
                ..CreateUserRequest::default()
            })
            .await
            .expect("register")
            .into_inner()
            .user
            .expect("user")
    }

    /// `login` deletes their own account (user `id`), as the REST API's
    /// DELETE does.
    pub async fn delete_self(&self, login: &str, id: &str) {
        let me = self
            .login(login, PASSWORD)
            .await
            .expect("login")
            .access_token;
        self.users
            .clone()
            .delete_user(authed(
                suite_proto::user::DeleteUserRequest {
                    id: id.to_owned(),
                    etag: String::new(),
                },
                &me,
            ))
            .await
            .expect("delete");
    }

    pub async fn login(&self, login: &str, password: &str) -> Result<LoginResponse, Status> {
        self.client
            .clone()
            .login(login_req(login, password))
            .await
            .map(|r| r.into_inner())
    }

    /// An admin's access token, signed with the suite's key (no admin can
    /// register by himself, as it should be).
    pub fn admin_token(&self) -> String {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        self.key
            .sign(&suite_tokens::Claims {
                iss: "suite-auth".into(),
                aud: suite_tokens::Audience::One("suite".into()),
                sub: Uuid::now_v7().to_string(),
                exp: now + 300,
                iat: now,
                nbf: now,
                jti: Uuid::now_v7().to_string(),
                sid: None,
                roles: vec!["user".into(), "admin".into()],
                client_id: None,
                scope: None,
                amr: Vec::new(),
                auth_time: None,
                pat: false,
            })
            .expect("sign")
    }

    /// A service token with `name` as its subject (suitectl's is the operator's).
    pub fn service_token_of(&self, name: &str) -> String {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        self.key
            .sign(&suite_tokens::Claims {
                iss: "suite-auth".into(),
                aud: suite_tokens::Audience::One("suite".into()),
                sub: name.into(),
                exp: now + 300,
                iat: now,
                nbf: now,
                jti: Uuid::now_v7().to_string(),
                sid: None,
                roles: vec!["service".into()],
                client_id: None,
                scope: None,
                amr: Vec::new(),
                auth_time: None,
                pat: false,
            })
            .expect("sign")
    }

    /// The ClientService of the auth service.
    pub fn clients(&self) -> ClientServiceClient<Channel> {
        ClientServiceClient::new(channel(self.auth.addr))
    }

    /// The ConsentService of the auth service.
    pub fn consents(&self) -> ConsentServiceClient<Channel> {
        ConsentServiceClient::new(channel(self.auth.addr))
    }

    /// The OAuthService of the auth service.
    pub fn oauth(&self) -> OAuthServiceClient<Channel> {
        OAuthServiceClient::new(channel(self.auth.addr))
    }

    pub async fn stop(mut self) {
        self.auth.stop().await;
        self.user.stop().await;
        self.auth_db.drop_database().await;
        self.user_db.drop_database().await;
    }
}

/// How many refresh tokens of the auth database are live (not retired).
pub async fn live_refresh_tokens(db: &TestDb) -> i64 {
    const COUNT: &str = "SELECT COUNT(*) FROM refresh_tokens WHERE retired_at IS NULL";
    suite_testkit::with_pool!(db.url, |pool| sqlx::query_scalar(COUNT)
        .fetch_one(&pool)
        .await
        .expect("count"))
}
