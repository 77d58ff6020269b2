//! The whole suite as `cargo run` starts it: both services in one process,
//! wired by the launcher alone, used end to end over real gRPC.

use std::time::Duration;
use suite_proto::{
    auth::{LoginRequest, RefreshRequest, auth_service_client::AuthServiceClient},
    user::{CreateUserRequest, GetUserRequest, user_service_client::UserServiceClient},
};
use tonic::{Request, transport::Channel};

fn channel(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect_lazy()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_login_call_and_refresh_through_the_launched_suite() {
    let dir = tempfile::tempdir().expect("dir");
    let config = suite::SuiteConfig::on_free_ports(dir.path().to_owned());
    let listeners = suite::Listeners::bind(&config).await.expect("bind");
    let user_addr = listeners.user.local_addr().expect("addr");
    let auth_addr = listeners.auth.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let suite = tokio::spawn(suite::run(
        config,
        suite_testkit::hermetic::<suite_user::Config>(),
        suite_testkit::hermetic::<suite_auth::Config>(),
        suite_testkit::hermetic::<suite_gateway::Config>(),
        listeners,
        async {
            let _ = stopped.await;
        },
    ));

    let mut users = UserServiceClient::new(channel(user_addr));
    let mut auth = AuthServiceClient::new(channel(auth_addr));
    let register = CreateUserRequest {
        username: "ada".into(),
        email: "ada@example.com".into(),
        password: "analytical engine 1843".into(),
        ..CreateUserRequest::default()
    };
    // The services become ready as they migrate; retry registration until then.
    let mut created = None;
    for _ in 0..100 {
        if let Ok(r) = users.create_user(register.clone()).await {
            created = r.into_inner().user;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ada = created.expect("registered");
    let login = LoginRequest {
        login: "ada".into(),
        password: "analytical engine 1843".into(),
        user_agent: String::new(),
    };
    let mut tokens = None;
    for _ in 0..100 {
        if let Ok(r) = auth.login(login.clone()).await {
            tokens = Some(r.into_inner());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let tokens = tokens.expect("logged in");
    let mut get = Request::new(GetUserRequest { id: "me".into() });
    get.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", tokens.access_token)
            .parse()
            .expect("ascii"),
    );
    let me = users
        .get_user(get)
        .await
        .expect("an authenticated call")
        .into_inner();
    assert_eq!(me.user.expect("user").id, ada.id);
    auth.refresh(RefreshRequest {
        refresh_token: tokens.refresh_token,
    })
    .await
    .expect("refresh");
    // A signing key was generated into the data directory, with the databases.
    for file in ["auth-signing-key.pem", "user.db", "auth.db"] {
        assert!(dir.path().join(file).exists(), "{file} missing");
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), suite)
        .await
        .expect("the suite stops")
        .expect("task")
        .expect("a clean stop");
}
