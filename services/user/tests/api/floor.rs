//! The failure floor: a wrong password is answered no sooner than the
//! slowest verification the service may make, whatever the account's hash,
//! and the wait holds no turn of the account's. The floor is stretched to
//! an hour here, so that a failure is plainly still waiting; nothing is
//! timed.

use crate::helpers::{Backend, PASSWORD, TestApp, authed, spawn_app_with};
use crate::imported::{import, login, user};
use std::time::{Duration, Instant};
use suite_proto::user::{VerifyCredentialsRequest, verify_credentials_response::Outcome};
use suite_user::throttle::{Account, Keys};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(20);

async fn spawn_with_an_hour_long_floor(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |c| {
        c.failure_floor_at_least = Duration::from_secs(3600);
    })
    .await
}

/// Waits until a check of `user` from `address` has been counted (its
/// reservation made, so it holds the account's turn or has held it).
async fn counted(app: &TestApp, user: Uuid, address: &str) {
    let config = crate::helpers::test_config(&app.db.url, &app.key);
    let db = suite_user::startup::open_database(&config).expect("database");
    let store = suite_user::store::open(&db);
    let key = Keys::new(Account::User(user), address).pair;
    let start = Instant::now();
    while store
        .failures(&key)
        .await
        .expect("read")
        .is_none_or(|f| f.count == 0)
    {
        assert!(
            start.elapsed() < DEADLINE,
            "the wrong guess was never counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn a_wrong_password_waits_out_the_floor_without_holding_the_accounts_turn(app: TestApp) {
    let imported_password = "imported and cheap to check 3";
    let results = import(
        &app,
        vec![user(
            "remy",
            &bcrypt::hash(imported_password, 10).expect("bcrypt"),
        )],
    )
    .await;
    let remy: Uuid = results[0].user_id.parse().expect("created");
    let nora: Uuid = app.create_user("nora").await.id.parse().expect("a user id");
    // An imported bcrypt of the cheapest accepted cost, and our own argon2id.
    for (name, id, password) in [("remy", remy, imported_password), ("nora", nora, PASSWORD)] {
        let wrong = VerifyCredentialsRequest {
            login: name.into(),
            password: "a wrong guess at it".into(),
            client_address: "192.0.2.1".into(),
            user_agent: String::new(),
        };
        let mut c = app.client.clone();
        let token = app.service_token();
        let guess = tokio::spawn(async move { c.verify_credentials(authed(wrong, &token)).await });
        // The guess holds the account's turn from here until its failure
        // is counted; the owner's login, sent now, waits for that turn.
        counted(&app, id, "192.0.2.1").await;
        let owner = tokio::time::timeout(DEADLINE, login(&app, name, password))
            .await
            .expect("the owner waited for the guess's floor");
        assert_eq!(owner, Outcome::Valid, "{name}");
        assert!(
            !guess.is_finished(),
            "{name}: the wrong guess was answered before the floor"
        );
        // Cancelled: the server drops the call and its wait.
        guess.abort();
    }
    app.stop().await;
}

suite_testkit::on_both_databases!(crate::floor::spawn_with_an_hour_long_floor;
    a_wrong_password_waits_out_the_floor_without_holding_the_accounts_turn,
);
