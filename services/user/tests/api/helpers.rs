//! Starting the real user service on an ephemeral port over a fresh database,
//! and minting the tokens the tests present.

use std::{
    net::SocketAddr,
    time::{SystemTime, UNIX_EPOCH},
};
use suite_proto::user::{
    CreateUserRequest, GetUserRequest, UpdateUserRequest, User,
    user_service_client::UserServiceClient,
};
use suite_tokens::{Audience, Claims, SigningKey, jwks_of};
use tokio::net::TcpListener;
use tonic::{Request, Status, transport::Channel};
use uuid::Uuid;

pub const PASSWORD: &str = "tangerine velvet orbit 42";
pub const ISSUER: &str = "suite-auth";

pub use suite_testkit::{Backend, Server, TestDb};

/// A running user service and what the tests need to talk to it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: UserServiceClient<Channel>,
    pub key: SigningKey,
    pub db: TestDb,
    pub server: Server<suite_user::StartError>,
}

pub fn test_config(db_url: &str, key: &SigningKey) -> suite_user::Config {
    let mut config = suite_testkit::hermetic::<suite_user::Config>();
    config.database_url = db_url.parse().expect("a database URL");
    config.keys.jwks = Some(suite_tokens::jwks::JwksSource::Static(
        jwks_of(std::slice::from_ref(key)).expect("jwks"),
    ));
    config.tokens.jwt_issuer = ISSUER.into();
    config.jwt_audiences = vec!["suite".into(), "suite-user".into()];
    config.password_hash_concurrency = Some(2);
    config.mail.mail_dir = suite_testkit::temp_mail_dir();
    config
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    tweak: impl FnOnce(&mut suite_user::Config),
) -> Option<TestApp> {
    let db = TestDb::create(backend, "user").await?;
    let key = SigningKey::generate("test-key-1").expect("key");
    let mut config = test_config(&db.url, &key);
    tweak(&mut config);
    let app = start(config, key, db).await;
    app.wait_until_serving().await;
    Some(app)
}

/// Starts the server without waiting for it to be ready.
pub async fn start(config: suite_user::Config, key: SigningKey, db: TestDb) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = Server::start(listener, |l, shutdown| {
        suite_user::serve(config, l, shutdown)
    });
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .expect("uri")
        .connect_lazy();
    TestApp {
        addr: server.addr,
        client: UserServiceClient::new(channel),
        key,
        db,
        server,
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn claims(sub: &str, roles: &[&str]) -> Claims {
    let now = now();
    Claims {
        iss: ISSUER.into(),
        aud: Audience::One("suite".into()),
        sub: sub.into(),
        exp: now + 900,
        iat: now,
        nbf: now,
        jti: Uuid::now_v7().to_string(),
        sid: None,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        client_id: None,
        scope: None,
        amr: Vec::new(),
        auth_time: None,
        pat: false,
    }
}

pub fn authed<T>(msg: T, token: &str) -> Request<T> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    req
}

impl TestApp {
    pub fn sign(&self, claims: &Claims) -> String {
        self.key.sign(claims).expect("sign")
    }

    pub fn token_for(&self, user: &User) -> String {
        let roles: Vec<&str> = user.roles.iter().map(String::as_str).collect();
        self.sign(&claims(&user.id, &roles))
    }

    pub fn admin_token(&self) -> String {
        self.sign(&claims(&Uuid::now_v7().to_string(), &["user", "admin"]))
    }

    pub fn service_token(&self) -> String {
        self.service_token_of("suite-auth")
    }

    /// A service token with `name` as its subject (suitectl's is the operator's).
    pub fn service_token_of(&self, name: &str) -> String {
        let mut c = claims(name, &["service"]);
        c.aud = Audience::One("suite-user".into());
        self.sign(&c)
    }

    /// Registers a user with the default password.
    pub async fn create_user(&self, username: &str) -> User {
        self.client
            .clone()
            .create_user(CreateUserRequest {
                username: username.into(),
                email: format!("{username}@example.com"),
                password: PASSWORD.into(),
                display_name: String::new(),
                roles: vec![],
            })
            .await
            .expect("create user")
            .into_inner()
            .user
            .expect("user in response")
    }

    /// GetUser `id` with `token`.
    pub async fn get(&self, token: &str, id: &str) -> Result<User, Status> {
        let req = GetUserRequest { id: id.into() };
        let reply = self.client.clone().get_user(authed(req, token)).await?;
        reply
            .into_inner()
            .user
            .ok_or_else(|| Status::internal("no user in the reply"))
    }

    /// UpdateUser with `token`: `user` names the user (by id) and carries the
    /// new values; `mask` lists the paths (empty: no mask).
    pub async fn update(&self, token: &str, user: User, mask: &[&str]) -> Result<User, Status> {
        let req = update_request(user, mask);
        let reply = self.client.clone().update_user(authed(req, token)).await?;
        reply
            .into_inner()
            .user
            .ok_or_else(|| Status::internal("no user in the reply"))
    }

    pub async fn health(&self, service: &str) -> Option<i32> {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .ok()?
            .connect()
            .await
            .ok()?;
        let r = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .ok()?;
        Some(r.into_inner().status)
    }

    pub async fn wait_until_serving(&self) {
        for _ in 0..200 {
            if self.health("").await == Some(1) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the user service never became SERVING");
    }

    /// Asks the server to stop and waits until it has.
    pub async fn stop(mut self) {
        self.server.stop().await;
        self.db.drop_database().await;
    }

    pub fn trigger_stop(&mut self) {
        self.server.trigger_stop();
    }
}

/// An UpdateUser request: `user` names the user (by id) and carries the new
/// values; `mask` lists the paths (empty: no mask).
pub fn update_request(user: User, mask: &[&str]) -> UpdateUserRequest {
    let update_mask = (!mask.is_empty()).then(|| prost_types::FieldMask {
        paths: mask.iter().map(|p| (*p).to_owned()).collect(),
    });
    UpdateUserRequest {
        user: Some(user),
        update_mask,
    }
}
