//! Faults of the database under the user service: every call it cannot
//! serve is a fast, retryable Unavailable (with a RetryInfo), never an
//! internal error, and service resumes by itself once the database is back.

use crate::helpers::{PASSWORD, TestApp, TestDb, authed, start, test_config};
use std::time::{Duration, Instant};
use suite_proto::user::{VerifyCredentialsRequest, verify_credentials_response::Outcome};
use suite_testkit::PrivatePostgres;
use suite_tokens::SigningKey;
use tonic::Code;
use tonic_types::StatusExt;

/// Far longer than a refused call may take: a call that waited for the pool
/// would take this long.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(20);

/// Every call refused while the database is down is answered well before the
/// pool's acquire timeout (the breaker answers at once), as Unavailable
/// with a RetryInfo; once the database is back, calls succeed again, with
/// no failure from the connections the restart killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_is_a_fast_unavailable_and_its_return_resumes_service() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    pg.create_database("users").await;
    let db = TestDb::existing(pg.url("users"));
    let key = SigningKey::generate("test-key-1").expect("key");
    let mut config = test_config(&db.url, &key);
    config.pool.database_acquire_timeout = ACQUIRE_TIMEOUT;
    // The database's faults are tested: every read goes to it (with the
    // cache, a user read before the outage is served from memory).
    config.user_cache = suite_user::cache::CacheMode::Off;
    let app = start(config, key, db).await;
    app.wait_until_serving().await;
    let user = app.create_user("faulty").await;
    let token = app.token_for(&user);
    let svc = app.service_token();
    app.get(&token, "me").await.expect("before the outage");

    pg.stop();
    // The first call finds the connections cut (57P01, or the socket
    // closed); every call after it is refused by the breaker.
    for n in 0..10 {
        let started = Instant::now();
        let err = app
            .get(&token, "me")
            .await
            .expect_err("the database is down");
        assert_unavailable(&err, n);
        assert!(
            started.elapsed() < ACQUIRE_TIMEOUT,
            "call {n} waited for the pool"
        );
        let started = Instant::now();
        let err = check(&app, &svc).await.expect_err("the database is down");
        assert_unavailable(&err, n);
        assert!(
            started.elapsed() < ACQUIRE_TIMEOUT,
            "check {n} waited for the pool"
        );
    }

    pg.start_again().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match app.get(&token, "me").await {
            Ok(_) => break,
            Err(e) => {
                assert_unavailable(&e, 0);
                assert!(Instant::now() < deadline, "never served again: {e:?}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    // Resumed for good: no call meets a connection the restart killed.
    for n in 0..20 {
        app.get(&token, "me")
            .await
            .unwrap_or_else(|e| panic!("call {n} after the return: {e:?}"));
    }
    let answer = check(&app, &svc)
        .await
        .expect("a check after the return")
        .into_inner();
    assert_eq!(answer.outcome(), Outcome::Valid);
    stop(app).await;
}

/// The right password of the test's user, checked with a service token.
async fn check(
    app: &TestApp,
    service_token: &str,
) -> Result<tonic::Response<suite_proto::user::VerifyCredentialsResponse>, tonic::Status> {
    let req = VerifyCredentialsRequest {
        login: "faulty".into(),
        password: PASSWORD.into(),
        client_address: String::new(),
        user_agent: String::new(),
    };
    app.client
        .clone()
        .verify_credentials(authed(req, service_token))
        .await
}

fn assert_unavailable(err: &tonic::Status, n: usize) {
    assert_eq!(err.code(), Code::Unavailable, "call {n}: {err:?}");
    assert!(
        err.get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .is_some(),
        "call {n} says when to retry: {err:?}"
    );
}

async fn stop(app: TestApp) {
    app.stop().await;
}
