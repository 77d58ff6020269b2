use crate::helpers::{
    Backend, PASSWORD, TestDb, authed, spawn_app, spawn_app_with, start, test_config,
};
use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use suite_proto::user::{
    CreateUserRequest, ListUsersRequest, user_service_client::UserServiceClient,
};
use suite_testkit::eventually;
use suite_tokens::SigningKey;
use tokio::net::TcpListener;
use tonic::Code;

const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;
/// How long a test waits for what it expects before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_the_services() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect_lazy();
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream_once(req))
        .await
        .expect("reflection")
        .into_inner();
    let reply = stream.message().await.expect("message").expect("a reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reply {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        !names.iter().any(|n| n == "suite.auth.v1.AuthService"),
        "lists a service it does not serve: {names:?}"
    );
    for expected in [
        "suite.user.v1.UserService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    app.stop().await;
}

fn tokio_stream_once<T: Send + 'static>(item: T) -> impl tokio_stream::Stream<Item = T> {
    tokio_stream::once(item)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_completes_the_call_in_flight_and_stops_cleanly() {
    // Slow hashing keeps a CreateUser in flight while the stop arrives.
    let Some(mut app) = spawn_app_with(Backend::Sqlite, |c| c.argon2_iterations = 40).await else {
        return;
    };
    // A connection of its own, up before the call (so the call goes straight
    // out on it), that tells when the call has been handed to it.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let sent = Arc::new(AtomicBool::new(false));
    let flag = sent.clone();
    let mut client = UserServiceClient::with_interceptor(channel, move |request| {
        flag.store(true, Ordering::SeqCst);
        Ok(request)
    });
    let call = tokio::spawn(async move {
        client
            .create_user(CreateUserRequest {
                username: "slowpoke".into(),
                email: "slow@example.com".into(),
                password: PASSWORD.into(),
                ..CreateUserRequest::default()
            })
            .await
    });
    // In flight once sent and its password is being hashed (or waits to
    // be; the gauges are the process's, so the sending is checked too).
    eventually(
        "the CreateUser call reaches the hashing threads",
        PATIENCE,
        async || {
            let m = suite_user::metrics::metrics();
            sent.load(Ordering::SeqCst)
                && m.password_hash_running.get() + m.password_hash_queued.get() > 0
        },
    )
    .await;
    app.trigger_stop();
    let created = call
        .await
        .expect("task")
        .expect("the in-flight call completes");
    assert_eq!(
        created.into_inner().user.expect("user").username,
        "slowpoke"
    );
    let server = app.server.task.take().expect("server");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops")
        .expect("task")
        .expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_the_drain_delay_the_server_is_not_serving_but_still_answers() {
    let Some(mut app) = spawn_app_with(Backend::Sqlite, |c| {
        c.grpc.shutdown_drain_delay = Duration::from_secs(2)
    })
    .await
    else {
        return;
    };
    let started = std::time::Instant::now();
    app.trigger_stop();
    // At once NOT_SERVING (asked on a new connection: still accepting) ...
    eventually("NOT_SERVING once the stop is asked", PATIENCE, async || {
        app.health("").await == Some(NOT_SERVING)
    })
    .await;
    // ... while calls are still served, on old connections and new ones.
    let admin = app.admin_token();
    app.client
        .clone()
        .list_users(authed(ListUsersRequest::default(), &admin))
        .await
        .expect("served during the drain");
    let fresh = tonic::transport::Channel::from_shared(format!("http://{}", app.addr))
        .expect("uri")
        .connect_lazy();
    suite_proto::user::user_service_client::UserServiceClient::new(fresh)
        .list_users(authed(ListUsersRequest::default(), &admin))
        .await
        .expect("served on a new connection during the drain");
    let server = app.server.task.take().expect("server");
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("server stops after the drain")
        .expect("task")
        .expect("clean stop");
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "stopped before the drain delay: {:?}",
        started.elapsed()
    );
    // Then it no longer accepts.
    assert_eq!(app.health("").await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_deadline_is_honoured() {
    // One hashing thread takes the hashes in turn: a later call's hash ends
    // after the abandoned one's.
    let Some(app) = spawn_app_with(Backend::Sqlite, |c| {
        c.argon2_iterations = 40;
        c.password_hash_concurrency = Some(1);
    })
    .await
    else {
        return;
    };
    let mut req = tonic::Request::new(CreateUserRequest {
        username: "hasty".into(),
        email: "hasty@example.com".into(),
        password: PASSWORD.into(),
        ..CreateUserRequest::default()
    });
    req.set_timeout(Duration::from_millis(20));
    let err = app
        .client
        .clone()
        .create_user(req)
        .await
        .expect_err("deadline");
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    // The abandoned call wrote nothing, even once its hash was done: a
    // call queued behind it has finished.
    app.create_user("patient").await;
    let list = app
        .client
        .clone()
        .list_users(authed(ListUsersRequest::default(), &app.admin_token()))
        .await
        .expect("list")
        .into_inner();
    let names: Vec<_> = list.users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["patient"], "the abandoned call wrote nothing");
    app.stop().await;
}

/// A TCP forwarder standing in for the database's network path, so the test
/// can take the database "down" and bring it back.
/// Aborting it drops the JoinSet, which cuts every forwarded connection too.
async fn forward(listener: TcpListener, target: String) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let target = target.clone();
        connections.spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_database_and_calls_recover_when_it_returns() {
    let Some(db) = TestDb::create(Backend::Postgres, "user").await else {
        return;
    };
    // postgres://user@host:port/name → point host:port at a port nobody listens on yet.
    let (prefix, rest) = db.url.split_once('@').expect("url has @");
    let (hostport, dbname) = rest.split_once('/').expect("url has /");
    let spare = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = spare.local_addr().expect("addr").port();
    drop(spare);
    let url = format!("{prefix}@127.0.0.1:{port}/{dbname}");

    let key = SigningKey::generate("test-key-1").expect("key");
    let mut config = test_config(&url, &key);
    config.pool.database_acquire_timeout = Duration::from_secs(1);
    let target = hostport.to_owned();
    let app = start(config, key, db).await;

    eventually(
        "NOT_SERVING while the database is down",
        PATIENCE,
        async || app.health("").await == Some(NOT_SERVING),
    )
    .await;
    assert_eq!(
        app.health("suite.user.v1.UserService").await,
        Some(NOT_SERVING)
    );
    let err = app
        .client
        .clone()
        .list_users(authed(ListUsersRequest::default(), &app.admin_token()))
        .await
        .expect_err("database down");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        !err.message().contains(&port.to_string()),
        "the address leaked: {}",
        err.message()
    );

    // The database comes back: the service migrates, turns SERVING and answers.
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let proxy = tokio::spawn(forward(listener, target));
    app.wait_until_serving().await;
    assert_eq!(app.health("suite.user.v1.UserService").await, Some(SERVING));
    // Calls recover: the first may still meet the outage's last breath (its
    // one-second acquire timeout on a busy machine), a later one must pass.
    eventually(
        "a registration after the database returned",
        PATIENCE,
        async || {
            app.client
                .clone()
                .create_user(CreateUserRequest {
                    username: "phoenix".into(),
                    email: "phoenix@example.com".into(),
                    password: crate::helpers::PASSWORD.into(),
                    display_name: String::new(),
                    roles: vec![],
                })
                .await
                // A retry after an answer that was lost finds it made.
                .map_or_else(|e| e.code() == Code::AlreadyExists, |_| true)
        },
    )
    .await;

    // ...and goes away again: NOT_SERVING within a few seconds.
    proxy.abort();
    let mut status = None;
    for _ in 0..40 {
        status = app.health("").await;
        if status == Some(NOT_SERVING) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(status, Some(NOT_SERVING));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_configuration_names_the_variable() {
    let key = SigningKey::generate("k").expect("key");
    let err = suite_grpc::config::parse_from::<suite_user::Config, _, _>([
        "suite-user",
        "--database-url",
        "mysql://nope",
    ])
    .expect_err("bad url");
    assert!(err.to_string().contains("DATABASE_URL"), "{err}");
    let mut config = test_config("sqlite::memory:", &key);
    config.argon2_memory_kib = 1;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let err = suite_user::serve(config, listener, std::future::ready(()))
        .await
        .expect_err("bad argon2");
    assert!(err.to_string().contains("ARGON2_MEMORY_KIB"), "{err}");
}

async fn replicas_starting_together_on_one_database_all_become_ready(backend: Backend) {
    let Some(db) = TestDb::create(backend, "user").await else {
        return;
    };
    let key = SigningKey::generate("test-key-1").expect("key");
    let config = test_config(&db.url, &key);
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(start(config.clone(), key.clone(), db.share()).await);
    }
    for r in &replicas {
        r.wait_until_serving().await;
    }
    // They share the data: one registers, another sees the name taken.
    replicas[0].create_user("shared").await;
    let err = replicas[2]
        .client
        .clone()
        .create_user(CreateUserRequest {
            username: "shared".into(),
            email: "other@example.com".into(),
            password: PASSWORD.into(),
            ..CreateUserRequest::default()
        })
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);
    for r in replicas {
        r.stop().await;
    }
    db.drop_database().await;
}

suite_testkit::on_both_databases!(suite_testkit::db::backend;
    replicas_starting_together_on_one_database_all_become_ready,
);

/// The first start on an empty PostgreSQL database: nothing queries the
/// service's tables before the migrations (run by the readiness check)
/// have made them, so the server's log has no "relation … does not exist"
/// (the outbox relay used to probe the outbox from the start). The relay
/// has run by the end: a change's event left the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_queries_a_table_before_the_migrations_have_made_it() {
    use suite_testkit::PrivatePostgres;
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    pg.create_database("fresh").await;
    let db = TestDb::existing(pg.url("fresh"));
    let key = SigningKey::generate("test-key-1").expect("key");
    let app = start(test_config(&db.url, &key), key, db).await;
    app.wait_until_serving().await;
    app.create_user("first").await;
    suite_testkit::db::outbox_drained(&pg.url("fresh"), Duration::from_secs(30)).await;
    app.stop().await;
    let log = pg.log();
    assert!(
        !log.contains("does not exist"),
        "a query ran before the migrations:\n{log}"
    );
}
