//! The user service's events: one per change, written with the change and
//! published by the relay, on the in-process bus and on a real NATS (a
//! `nats-server -js` of the test's own); none lost or doubled through a NATS
//! outage, a killed process, or two replicas on one PostgreSQL.

use crate::helpers::{
    Backend, PASSWORD, TestApp, TestDb, authed, spawn_app_with, start, update_request,
};
use chrono::Utc;
use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use suite_events::{Bus, Event, EventsArgs, Filter, Item, LocalBus, Start, Stream};
use suite_proto::user::{
    ChangePasswordRequest, DeleteUserRequest, User, UserUpdated, VerifyCredentialsRequest,
    verify_credentials_response::Outcome,
};
use suite_testkit::NatsServer;
use suite_tokens::SigningKey;

const WAIT: Duration = Duration::from_secs(60);

/// Where the test reads the events from, and how the service is told.
enum Via {
    InProcess(LocalBus),
    Nats(NatsServer),
}

impl Via {
    fn configure(&self, events: &mut EventsArgs) {
        match self {
            Self::InProcess(bus) => events.local = Some(bus.clone()),
            Self::Nats(server) => events.nats_url = Some(server.url()),
        }
    }

    async fn bus(&self) -> Bus {
        match self {
            Self::InProcess(bus) => Bus::Local(bus.clone()),
            Self::Nats(server) => EventsArgs {
                nats_url: Some(server.url()),
                ..EventsArgs::default()
            }
            .bus("events-test")
            .await
            .expect("bus"),
        }
    }
}

/// Waits until every event in `db`'s outbox is published.
async fn drained(db: &TestDb) {
    suite_testkit::db::outbox_drained(&db.url, WAIT).await;
}

async fn unpublished(pg_url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(pg_url).await.expect("pg");
    let n = sqlx::query_scalar("SELECT count(*) FROM outbox")
        .fetch_one(&pool)
        .await
        .expect("count");
    pool.close().await;
    n
}

/// Every user event published since `since`, in the stream's order.
async fn published_since(bus: &Bus, since: chrono::DateTime<Utc>) -> Vec<Event> {
    let filter = Filter {
        streams: vec![Stream::User],
        ..Filter::default()
    };
    let mut sub = bus
        .subscribe(filter, Start::Since(since))
        .await
        .expect("subscribe");
    let mut events = Vec::new();
    loop {
        let item = tokio::time::timeout(WAIT, sub.next())
            .await
            .expect("in time")
            .expect("goes on")
            .expect("no error");
        match item {
            Item::Event { event, .. } => events.push(event),
            Item::CaughtUp => return events,
        }
    }
}

fn types_of<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<String> {
    events
        .into_iter()
        .map(|e| e.event_type.trim_start_matches("suite.user.v1.").to_owned())
        .collect()
}

async fn every_change_is_one_event(backend: Backend, via: Via) {
    let since = Utc::now() - chrono::Duration::seconds(1);
    let Some(app) = spawn_app_with(backend, |c| {
        via.configure(&mut c.events);
        c.login_free_attempts = 1;
    })
    .await
    else {
        return;
    };
    let bus = via.bus().await;
    let mut c = app.client.clone();
    let user = app.create_user("nina").await;
    let token = app.token_for(&user);
    let renamed = User {
        id: user.id.clone(),
        display_name: "Nina N.".into(),
        ..User::default()
    };
    app.update(&token, renamed, &["display_name"])
        .await
        .expect("update");
    let promoted = User {
        id: user.id.clone(),
        roles: vec!["user".into(), "admin".into()],
        ..User::default()
    };
    app.update(&app.admin_token(), promoted, &["roles"])
        .await
        .expect("roles");
    c.change_password(authed(
        ChangePasswordRequest {
            id: user.id.clone(),
            current_password: String::new(),
            new_password: "nina's new secret 2026".into(),
        },
        &app.admin_token(),
    ))
    .await
    .expect("reset");
    // The second wrong password locks this address out (one is free).
    for _ in 0..2 {
        let wrong = VerifyCredentialsRequest {
            login: "nina".into(),
            password: PASSWORD.into(),
            client_address: "192.0.2.7".into(),
            user_agent: String::new(),
        };
        let answer = c
            .verify_credentials(authed(wrong, &app.service_token()))
            .await
            .expect("a credential check")
            .into_inner();
        assert_eq!(answer.outcome(), Outcome::Invalid, "{answer:?}");
    }
    c.delete_user(authed(
        DeleteUserRequest {
            id: user.id.clone(),
            etag: String::new(),
        },
        &app.admin_token(),
    ))
    .await
    .expect("delete");
    // Someone else's change is someone else's event.
    let other = app.create_user("oscar").await;

    drained(&app.db).await;
    let events = published_since(&bus, since).await;
    let nina: Vec<&Event> = events.iter().filter(|e| e.subject == user.id).collect();
    assert_eq!(
        types_of(nina.iter().copied()),
        [
            "UserCreated",
            // Registration mails a verification link (EMAIL_VERIFICATION).
            "EmailVerificationRequested",
            "UserUpdated",
            "UserUpdated",
            "RolesChanged",
            "PasswordChanged",
            "AccountLocked",
            "UserDeleted"
        ]
    );
    assert!(nina.iter().all(|e| e.source == "suite-user"));
    let changed: Vec<Vec<String>> = nina
        .iter()
        .filter_map(|e| e.decode::<UserUpdated>())
        .map(|u| u.changed_fields)
        .collect();
    assert_eq!(
        changed,
        [vec!["display_name".to_owned()], vec!["roles".to_owned()]]
    );
    let locked = nina
        .iter()
        .find_map(|e| e.decode::<suite_proto::user::AccountLocked>())
        .expect("locked");
    assert!(!locked.whole_account && locked.locked_until.is_some());
    assert_eq!(
        types_of(events.iter().filter(|e| e.subject == other.id)),
        ["UserCreated", "EmailVerificationRequested"]
    );
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "an event twice");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_one_event_in_process_on_sqlite() {
    every_change_is_one_event(Backend::Sqlite, Via::InProcess(LocalBus::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_one_event_on_nats_on_postgres() {
    every_change_is_one_event(Backend::Postgres, Via::Nats(NatsServer::start())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_one_event_on_nats_on_sqlite() {
    every_change_is_one_event(Backend::Sqlite, Via::Nats(NatsServer::start())).await;
}

/// The users of a burst, each updated by its own task, one update at a time.
const USERS: usize = 10;

/// Checks the published events against the database: every user's every
/// committed update (its version minus one) has exactly one event, in the
/// order of the versions, and no event is there twice.
async fn every_update_once_in_order(
    bus: &Bus,
    since: chrono::DateTime<Utc>,
    users: &[User],
    app: &TestApp,
) {
    let client = app.client.clone();
    every_update_once_in_order_via(bus, since, users, client, &app.admin_token()).await;
}

async fn every_update_once_in_order_via(
    bus: &Bus,
    since: chrono::DateTime<Utc>,
    users: &[User],
    mut client: UserClient,
    admin: &str,
) {
    let events = published_since(bus, since).await;
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "an event was published twice");
    let mut versions: HashMap<String, Vec<i64>> = HashMap::new();
    for e in &events {
        if let Some(u) = e.decode::<UserUpdated>() {
            let user = u.user.expect("the user");
            versions
                .entry(user.id)
                .or_default()
                .push(user.etag.parse().expect("a version"));
        }
    }
    for user in users {
        let now = client
            .get_user(authed(
                suite_proto::user::GetUserRequest {
                    id: user.id.clone(),
                },
                admin,
            ))
            .await
            .expect("the user")
            .into_inner()
            .user
            .expect("the user");
        let committed: i64 = now.etag.parse().expect("a version");
        let seen = versions.remove(&user.id).unwrap_or_default();
        let expected: Vec<i64> = (2..=committed).collect();
        assert_eq!(seen, expected, "user {}: events by version", user.username);
    }
}

type UserClient =
    suite_proto::user::user_service_client::UserServiceClient<tonic::transport::Channel>;

/// Updates each user `per_user` times (the users side by side, each one's
/// updates one after another), through `apps` in turn; `after_each` runs
/// with the count of acknowledged updates. Returns how many failed.
async fn burst(
    apps: Arc<Vec<TestApp>>,
    users: &[User],
    per_user: usize,
    done: Arc<AtomicUsize>,
) -> usize {
    let mut tasks = Vec::new();
    for (n, user) in users.iter().enumerate() {
        let apps = apps.clone();
        let user = user.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut failed = 0;
            for i in 0..per_user {
                let app = &apps[(n + i) % apps.len()];
                let change = User {
                    id: user.id.clone(),
                    display_name: format!("change {i}"),
                    ..User::default()
                };
                match app
                    .update(&app.admin_token(), change, &["display_name"])
                    .await
                {
                    Ok(_) => {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => failed += 1,
                }
            }
            failed
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += t.await.expect("task");
    }
    failed
}

async fn wait_for(done: &AtomicUsize, n: usize) {
    let deadline = Instant::now() + WAIT;
    while done.load(Ordering::SeqCst) < n {
        assert!(Instant::now() < deadline, "the burst stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn create_users(app: &TestApp) -> Vec<User> {
    let mut users = Vec::new();
    for i in 0..USERS {
        users.push(app.create_user(&format!("burst{i}")).await);
    }
    users
}

/// 1,000 changes; NATS is killed after the first 300 and started again
/// once 400 more have been made while it was away (an outage of some
/// seconds, ended by what happened rather than by a timer). No request
/// fails, and every event arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_changes_lose_no_event_through_a_nats_outage() {
    let nats = Arc::new(std::sync::Mutex::new(NatsServer::start()));
    let url = nats.lock().expect("nats").url();
    let since = Utc::now() - chrono::Duration::seconds(1);
    let Some(app) =
        spawn_app_with(Backend::Postgres, |c| c.events.nats_url = Some(url.clone())).await
    else {
        return;
    };
    let users = create_users(&app).await;
    let done = Arc::new(AtomicUsize::new(0));
    let apps = Arc::new(vec![app]);
    let db_url = apps[0].db.url.clone();
    let outage = {
        let (nats, done) = (nats.clone(), done.clone());
        tokio::spawn(async move {
            wait_for(&done, 300).await;
            nats.lock().expect("nats").stop();
            wait_for(&done, 700).await;
            // The changes made meanwhile wait in the outbox.
            assert!(unpublished(&db_url).await > 0, "nothing waited for NATS");
            nats.lock().expect("nats").start_again();
        })
    };
    let failed = burst(apps.clone(), &users, 100, done.clone()).await;
    outage.await.expect("outage");
    assert_eq!(failed, 0, "a change failed while NATS was away");
    assert_eq!(done.load(Ordering::SeqCst), 1000);
    let app = &apps[0];
    drained(&app.db).await;
    let bus = EventsArgs {
        nats_url: Some(url),
        ..EventsArgs::default()
    }
    .bus("events-test")
    .await
    .expect("bus");
    every_update_once_in_order(&bus, since, &users, app).await;
}

/// Two replicas of the user service on one PostgreSQL and one NATS, the
/// changes spread over both: each event is published once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_publish_each_event_once() {
    let nats = NatsServer::start();
    let since = Utc::now() - chrono::Duration::seconds(1);
    let Some(first) =
        spawn_app_with(Backend::Postgres, |c| c.events.nats_url = Some(nats.url())).await
    else {
        return;
    };
    let mut config = crate::helpers::test_config(&first.db.url, &first.key);
    config.events.nats_url = Some(nats.url());
    // The second replica shares the first's database (and key); its own
    // TestDb handle is a throwaway that owns nothing.
    let spare = TestDb::create(Backend::Sqlite, "spare")
        .await
        .expect("spare");
    let second = start(
        config,
        SigningKey::from_pkcs8_pem("test-key-1", &first.key.to_pkcs8_pem()).expect("key"),
        spare,
    )
    .await;
    second.wait_until_serving().await;
    let users = create_users(&first).await;
    let done = Arc::new(AtomicUsize::new(0));
    let apps = Arc::new(vec![first, second]);
    let failed = burst(apps.clone(), &users, 50, done).await;
    assert_eq!(failed, 0);
    drained(&apps[0].db).await;
    let bus = Via::Nats(nats);
    every_update_once_in_order(&bus.bus().await, since, &users, &apps[0]).await;
}

/// The user service as a process of its own, to be killed mid-burst.
struct Child {
    process: std::process::Child,
    addr: std::net::SocketAddr,
}

impl Child {
    fn start(db_url: &str, key: &SigningKey, nats_url: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let jwks = suite_tokens::jwks_of(std::slice::from_ref(key)).expect("jwks");
        let process = std::process::Command::new(env!("CARGO_BIN_EXE_suite-user"))
            .env_clear()
            .env("LISTEN_ADDR", addr.to_string())
            .env("DATABASE_URL", db_url)
            .env("JWKS", serde_json::to_string(&jwks).expect("json"))
            .env("JWT_ISSUER", crate::helpers::ISSUER)
            .env("JWT_AUDIENCES", "suite,suite-user")
            .env("NATS_URL", nats_url)
            .env("PASSWORD_HASH_CONCURRENCY", "2")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("suite-user");
        Self { process, addr }
    }

    async fn client(
        &self,
    ) -> suite_proto::user::user_service_client::UserServiceClient<tonic::transport::Channel> {
        let deadline = Instant::now() + WAIT;
        let url = format!("http://{}", self.addr);
        loop {
            // Serving once migrated: health says so.
            if let Ok(channel) = tonic::transport::Channel::from_shared(url.clone())
                .expect("uri")
                .connect()
                .await
            {
                let mut health =
                    tonic_health::pb::health_client::HealthClient::new(channel.clone());
                let serving = health
                    .check(tonic_health::pb::HealthCheckRequest::default())
                    .await
                    .is_ok_and(|r| r.into_inner().status == 1);
                if serving {
                    return UserClient::new(channel);
                }
            }
            assert!(Instant::now() < deadline, "suite-user never served");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn kill(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The relay's process is killed (SIGKILL) in the middle of a burst and
/// started again: every change the database holds has its event, once and
/// in order, the ones whose answers the kill cut off included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_loses_no_event_and_sends_none_twice() {
    let nats = NatsServer::start();
    let since = Utc::now() - chrono::Duration::seconds(1);
    // Only the child processes serve (and relay): the database and key
    // are the test's own.
    let Some(db) = TestDb::create(Backend::Postgres, "killed").await else {
        return;
    };
    let key = SigningKey::generate("test-key-1").expect("key");
    let admin = key
        .sign(&crate::helpers::claims(
            &uuid::Uuid::now_v7().to_string(),
            &["user", "admin"],
        ))
        .expect("sign");
    let mut child = Child::start(&db.url, &key, &nats.url());
    let mut client = child.client().await;
    let mut users = Vec::new();
    for i in 0..USERS {
        let created = client
            .create_user(suite_proto::user::CreateUserRequest {
                username: format!("killed{i}"),
                email: format!("killed{i}@example.com"),
                password: PASSWORD.into(),
                ..Default::default()
            })
            .await
            .expect("create")
            .into_inner()
            .user
            .expect("user");
        users.push(created);
    }
    let done = Arc::new(AtomicUsize::new(0));
    let run = |client: suite_proto::user::user_service_client::UserServiceClient<
        tonic::transport::Channel,
    >,
               rounds: std::ops::Range<usize>| {
        let mut tasks = Vec::new();
        for user in &users {
            let (mut client, user, admin, done, rounds) = (
                client.clone(),
                user.clone(),
                admin.clone(),
                done.clone(),
                rounds.clone(),
            );
            tasks.push(tokio::spawn(async move {
                for i in rounds {
                    let renamed = User {
                        id: user.id.clone(),
                        display_name: format!("change {i}"),
                        ..User::default()
                    };
                    let req = update_request(renamed, &["display_name"]);
                    if client.update_user(authed(req, &admin)).await.is_err() {
                        // The process is gone: this task's part is over.
                        return;
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        tasks
    };
    let tasks = run(client, 0..60);
    wait_for(&done, 300).await;
    child.kill();
    for t in tasks {
        t.await.expect("task");
    }
    let child = Child::start(&db.url, &key, &nats.url());
    let client = child.client().await;
    for t in run(client.clone(), 60..80) {
        t.await.expect("task");
    }
    drained(&db).await;
    let bus = Via::Nats(nats);
    every_update_once_in_order_via(&bus.bus().await, since, &users, client, &admin).await;
}
