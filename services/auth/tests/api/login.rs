use crate::helpers::{Backend, PASSWORD, Suite, authed, login_req, spawn_suite_with};
use std::time::{Duration, Instant};
use suite_proto::user::GetUserRequest;
use tonic::Code;
use tonic_types::StatusExt;

async fn login_by_email_or_username_gives_tokens_the_user_service_accepts(s: Suite) {
    let user = s.register("alice").await;
    for login in ["alice", "ALICE@example.com"] {
        let t = s.login(login, PASSWORD).await.expect(login);
        assert_eq!((t.token_type.as_str(), t.expires_in), ("Bearer", 900));
        assert_eq!(t.refresh_token.len(), 43);
        assert_ne!(t.refresh_token, t.access_token);
        // The user service verifies the token with keys it fetched from us.
        let me = s
            .users
            .clone()
            .get_user(authed(GetUserRequest { id: "me".into() }, &t.access_token))
            .await
            .expect("the user service accepts the token")
            .into_inner()
            .user
            .expect("user");
        assert_eq!(me.id, user.id);
    }
    s.stop().await;
}

async fn a_wrong_password_and_an_unknown_user_are_indistinguishable(s: Suite) {
    s.register("bob").await;
    let wrong = s
        .login("bob", "not the password at all")
        .await
        .expect_err("wrong");
    let unknown = s
        .login("nobody", "not the password at all")
        .await
        .expect_err("unknown");
    assert_eq!(wrong.code(), Code::Unauthenticated);
    assert_eq!(
        (wrong.code(), wrong.message()),
        (unknown.code(), unknown.message())
    );
    let empty = s.login("", "").await.expect_err("empty");
    assert_eq!(empty.code(), Code::InvalidArgument);
    let fields: Vec<String> = empty
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default();
    assert_eq!(fields, vec!["login", "password"]);
    s.stop().await;
}

/// A login with a wrong password, refused as such.
async fn wrong_password(s: &Suite, name: &str) {
    let err = s
        .login(name, "wrong password here")
        .await
        .expect_err("wrong");
    assert_eq!(err.code(), Code::Unauthenticated, "{name}: {err:?}");
}

/// Failures lock the login name for a growing while (the same whether or not
/// the account exists); the lock ends by itself, and a success resets it.
async fn repeated_failures_lock_the_login_briefly_and_then_release_it(s: Suite) {
    s.register("carol").await;
    for name in ["carol", "ghost"] {
        // Defaults: 3 free failures, then 1 s, 2 s, ...: the 4th locks.
        for _ in 0..4 {
            wrong_password(&s, name).await;
        }
        let locked = s.login(name, PASSWORD).await.expect_err("locked");
        assert_eq!(locked.code(), Code::ResourceExhausted, "{name}: {locked:?}");
        let retry = locked
            .get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .expect("retry info");
        assert!(retry <= Duration::from_secs(1), "{retry:?}");
    }
    // The locks are alike for the real and the made-up account.
    let real = s.login("carol", PASSWORD).await.expect_err("locked");
    let ghost = s.login("ghost", PASSWORD).await.expect_err("locked");
    assert_eq!(real.message(), ghost.message());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.login("carol", PASSWORD)
        .await
        .expect("released, and the right password");
    // A success forgets the failures: three more are free again.
    for _ in 0..3 {
        wrong_password(&s, "carol").await;
    }
    s.stop().await;
}

/// Twenty wrong passwords at once for one account: the throttle's check and
/// count are one step, so only the free attempts and the one that locks are
/// checked; the rest find the lock.
async fn concurrent_wrong_guesses_cannot_race_past_the_lock(s: Suite) {
    s.register("race").await;
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..20 {
        let client = s.client.clone();
        guesses.spawn(async move {
            client
                .clone()
                .login(login_req("race", &format!("wrong guess number {n}")))
                .await
                .err()
                .map(|e| e.code())
        });
    }
    let codes: Vec<Option<Code>> = guesses.join_all().await;
    let checked = codes
        .iter()
        .filter(|c| **c == Some(Code::Unauthenticated))
        .count();
    let refused = codes
        .iter()
        .filter(|c| **c == Some(Code::ResourceExhausted))
        .count();
    // LOGIN_FREE_ATTEMPTS (3) + 1.
    assert!(checked <= 4, "{checked} guesses were checked: {codes:?}");
    assert_eq!(checked + refused, 20, "{codes:?}");
    s.stop().await;
}

suite_db::on_both_databases!(crate::helpers::spawn_suite;
    login_by_email_or_username_gives_tokens_the_user_service_accepts,
    a_wrong_password_and_an_unknown_user_are_indistinguishable,
    repeated_failures_lock_the_login_briefly_and_then_release_it,
    concurrent_wrong_guesses_cannot_race_past_the_lock,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_service_that_is_down_makes_login_unavailable_quickly() {
    // Point the auth service at a port nobody listens on.
    let spare = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = spare.local_addr().expect("addr");
    drop(spare);
    let Some(s) = spawn_suite_with(Backend::Sqlite, |c| {
        c.user_service_url = format!("http://{dead}")
    })
    .await
    else {
        return;
    };
    let start = Instant::now();
    let err = s
        .client
        .clone()
        .login(login_req("anyone", PASSWORD))
        .await
        .expect_err("down");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        !err.message().contains(&dead.port().to_string()),
        "the address leaked: {}",
        err.message()
    );
    s.stop().await;
}
