use crate::helpers::{
    Backend, PASSWORD, Suite, authed, login_req, spawn_suite_tuned, spawn_suite_with,
};
use std::time::{Duration, Instant};
use suite_proto::{
    auth::{ListSessionsRequest, LoginRequest, LoginResponse},
    user::{ChangePasswordRequest, GetUserRequest},
};
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
    let mut locks = Vec::new();
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
        locks.push(locked.message().to_owned());
    }
    // The locks are alike for the real and the made-up account (each seen
    // while it held: a failure is answered after the failure floor, so
    // carol's one-second lock may be over by the end of ghost's failures).
    assert_eq!(locks[0], locks[1]);
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

/// The login storm that once took the suite down: 32 right-password logins
/// to one account at once, while 32 wrong passwords hit another account.
/// Every right password signs in (none is counted against another in
/// flight), the wrong ones are checked until the lock and then refused,
/// nothing is a fault (no Unavailable, no internal error: no deadlock, no
/// pool timeout), and the owner signs in right after.
async fn a_storm_on_one_account_signs_every_right_password_in(s: Suite) {
    s.register("owner").await;
    s.register("target").await;
    let mut storm = tokio::task::JoinSet::new();
    for n in 0..32 {
        let (client, other) = (s.client.clone(), s.client.clone());
        storm.spawn(async move {
            let right = other.clone().login(login_req("owner", PASSWORD)).await;
            (
                true,
                right.err().map(|e| (e.code(), e.message().to_owned())),
            )
        });
        storm.spawn(async move {
            let wrong = client
                .clone()
                .login(login_req("target", &format!("wrong guess number {n}")))
                .await;
            (
                false,
                wrong.err().map(|e| (e.code(), e.message().to_owned())),
            )
        });
    }
    let answers = storm.join_all().await;
    let refused_rights: Vec<_> = answers
        .iter()
        .filter_map(|(right, err)| right.then_some(err.as_ref()).flatten())
        .collect();
    assert!(
        refused_rights.is_empty(),
        "right passwords refused: {refused_rights:?}"
    );
    let wrong: Vec<Code> = answers
        .iter()
        .filter(|(right, _)| !right)
        .map(|(_, err)| err.as_ref().map_or(Code::Ok, |e| e.0))
        .collect();
    assert!(
        wrong
            .iter()
            .all(|c| matches!(c, Code::Unauthenticated | Code::ResourceExhausted)),
        "{wrong:?}"
    );
    let checked = wrong
        .iter()
        .filter(|c| **c == Code::Unauthenticated)
        .count();
    // LOGIN_FREE_ATTEMPTS (3) + the one that locks.
    assert!(
        checked <= 4,
        "{checked} wrong guesses were checked: {wrong:?}"
    );
    s.login("owner", PASSWORD)
        .await
        .expect("the owner, after the storm");
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    a_storm_on_one_account_signs_every_right_password_in,
    login_by_email_or_username_gives_tokens_the_user_service_accepts,
    a_wrong_password_and_an_unknown_user_are_indistinguishable,
    repeated_failures_lock_the_login_briefly_and_then_release_it,
    concurrent_wrong_guesses_cannot_race_past_the_lock,
    change_password_guesses_count_against_the_login_throttle,
    the_username_and_the_email_share_one_counter,
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

/// A login request claiming to come from `address` (believed only from a
/// trusted caller).
fn login_from(login: &str, password: &str, address: &str) -> tonic::Request<LoginRequest> {
    let mut req = tonic::Request::new(login_req(login, password));
    req.metadata_mut()
        .insert("x-forwarded-for", address.parse().expect("ascii"));
    req
}

/// A wrong password for `login` from each address 198.51.100.n, n in
/// `hosts`: each refused as such.
async fn wrong_guesses_from(s: &Suite, login: &str, hosts: std::ops::Range<u8>) {
    for n in hosts {
        let address = format!("198.51.100.{n}");
        assert_eq!(
            attempt(s, login, "wrong guess", &address).await,
            Err(Code::Unauthenticated)
        );
    }
}

/// The answer to a login that must succeed.
async fn logged_in(s: &Suite, req: tonic::Request<LoginRequest>) -> LoginResponse {
    let answer = s.client.clone().login(req).await;
    answer.expect("login").into_inner()
}

async fn attempt(s: &Suite, login: &str, password: &str, address: &str) -> Result<(), Code> {
    s.client
        .clone()
        .login(login_from(login, password, address))
        .await
        .map(|_| ())
        .map_err(|e| e.code())
}

/// The current password of ChangePassword is a password guess like a
/// login's: with a stolen access token, its wrong guesses lock the account
/// as wrong logins do, and the lock holds for both.
async fn change_password_guesses_count_against_the_login_throttle(s: Suite) {
    let user = s.register("dora").await;
    let token = s.login("dora", PASSWORD).await.expect("login").access_token;
    let change = |current: &str| {
        authed(
            ChangePasswordRequest {
                id: user.id.clone(),
                current_password: current.into(),
                new_password: "a fresh and long passphrase 77".into(),
            },
            &token,
        )
    };
    // Defaults: 3 free failures; the 4th sets a lock.
    for n in 0..4 {
        let wrong = s
            .users
            .clone()
            .change_password(change(&format!("guess number {n}")))
            .await
            .expect_err("wrong current password");
        assert_eq!(wrong.code(), Code::InvalidArgument, "{wrong:?}");
    }
    let locked = s
        .users
        .clone()
        .change_password(change(PASSWORD))
        .await
        .expect_err("locked");
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked:?}");
    assert!(locked.get_details_retry_info().is_some());
    let login = s.login("dora", PASSWORD).await.expect_err("locked");
    assert_eq!(login.code(), Code::ResourceExhausted, "{login:?}");
    s.stop().await;
}

/// A user's username and email are one account with one counter.
async fn the_username_and_the_email_share_one_counter(s: Suite) {
    s.register("erin").await;
    for login in ["erin", "erin@example.com", "ERIN", "Erin@Example.com"] {
        wrong_password(&s, login).await;
    }
    let locked = s.login("erin", PASSWORD).await.expect_err("locked");
    assert_eq!(locked.code(), Code::ResourceExhausted, "{locked:?}");
    s.stop().await;
}

/// Behind a trusted gateway (here: the tests' own address is trusted), the
/// lock is per account and client address: a flood from one address does not
/// lock the owner out elsewhere. Across all addresses the account has a
/// higher limit of its own, which an attacker with many addresses reaches.
async fn a_flood_from_one_address_locks_that_address_not_the_owner(backend: Backend) {
    let Some(s) = spawn_suite_tuned(
        backend,
        |auth| auth.forwarded.trusted_forwarders = vec!["127.0.0.1".parse().expect("ip")],
        |user| user.login_account_free_attempts = 6,
    )
    .await
    else {
        return;
    };
    s.register("fred").await;
    let attacker = "198.51.100.1";
    for _ in 0..4 {
        assert_eq!(
            attempt(&s, "fred", "wrong guess", attacker).await,
            Err(Code::Unauthenticated)
        );
    }
    assert_eq!(
        attempt(&s, "fred", PASSWORD, attacker).await,
        Err(Code::ResourceExhausted),
        "the flooding address is locked"
    );
    assert_eq!(
        attempt(&s, "fred", PASSWORD, "203.0.113.5").await,
        Ok(()),
        "the owner elsewhere is not"
    );
    // Four failures so far on the account (the owner's success took its
    // check back); three more addresses take it past six.
    wrong_guesses_from(&s, "fred", 2..5).await;
    assert_eq!(
        attempt(&s, "fred", PASSWORD, "203.0.113.6").await,
        Err(Code::ResourceExhausted),
        "the account-wide limit holds for every address"
    );
    s.stop().await;
}

suite_testkit::on_both_databases!(mod own_databases; suite_testkit::db::backend;
    a_flood_from_one_address_locks_that_address_not_the_owner,
    only_the_gateway_names_the_client_address,
);

/// A direct gRPC caller cannot name a fresh address per guess: without the
/// gateway's secret its `x-forwarded-for` is ignored (and its sessions show
/// its real address); with the secret, the gateway's word is taken.
async fn only_the_gateway_names_the_client_address(backend: Backend) {
    let secret = "the gateway's forwarding secret";
    let Some(s) = spawn_suite_with(backend, |auth| {
        auth.forwarded.forwarding_secret = Some(secret.into())
    })
    .await
    else {
        return;
    };
    s.register("gina").await;
    wrong_guesses_from(&s, "gina", 0..4).await;
    assert_eq!(
        attempt(&s, "gina", PASSWORD, "198.51.100.99").await,
        Err(Code::ResourceExhausted),
        "a made-up address is no fresh start"
    );
    // Another user: a session from a claimed address shows the real one,
    // unless the claim carries the secret.
    s.register("hugo").await;
    let mut claimed = login_from("hugo", PASSWORD, "203.0.113.9");
    let stranger = logged_in(&s, claimed).await;
    claimed = login_from("hugo", PASSWORD, "203.0.113.9");
    claimed
        .metadata_mut()
        .insert("x-suite-forwarding-secret", secret.parse().expect("ascii"));
    let gateway = logged_in(&s, claimed).await;
    let sessions = s
        .client
        .clone()
        .list_sessions(authed(
            ListSessionsRequest::default(),
            &gateway.access_token,
        ))
        .await
        .expect("sessions")
        .into_inner()
        .sessions;
    let address_of = |id: &str| {
        sessions
            .iter()
            .find(|x| x.id == id)
            .map(|x| x.ip_address.clone())
    };
    assert_eq!(
        address_of(&stranger.session_id).as_deref(),
        Some("127.0.0.1")
    );
    assert_eq!(
        address_of(&gateway.session_id).as_deref(),
        Some("203.0.113.9")
    );
    s.stop().await;
}

/// The user service refuses the auth service's own token (the two disagree
/// on the audience, as after a half-applied configuration change): a login
/// is Unavailable (the deployment's fault, logged with its cause), never
/// "invalid login or password", which would look like every user typing a
/// wrong password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_service_token_is_unavailable_not_invalid_credentials() {
    let Some(s) = spawn_suite_tuned(
        Backend::Sqlite,
        |_| {},
        |user| user.jwt_audiences = vec!["another-deployment".into()],
    )
    .await
    else {
        return;
    };
    s.register("gina").await;
    let err = s.login("gina", PASSWORD).await.expect_err("refused token");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert!(
        !err.message().contains("invalid"),
        "reads as bad credentials: {err:?}"
    );
    assert!(
        err.get_details_retry_info()
            .and_then(|r| r.retry_delay)
            .is_some(),
        "says when to retry: {err:?}"
    );
    s.stop().await;
}
