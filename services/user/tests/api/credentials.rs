use crate::helpers::{PASSWORD, TestApp, authed};
use suite_proto::user::{
    ChangePasswordRequest, GetUserRequest, VerifyCredentialsRequest,
    user_service_client::UserServiceClient, verify_credentials_response::Outcome,
};
use tonic::Code;

fn verify(login: &str, password: &str) -> VerifyCredentialsRequest {
    VerifyCredentialsRequest {
        login: login.into(),
        password: password.into(),
        ..VerifyCredentialsRequest::default()
    }
}

/// The outcome of a credential check that must itself succeed.
async fn outcome(
    c: &mut UserServiceClient<tonic::transport::Channel>,
    login: &str,
    password: &str,
    token: &str,
) -> Outcome {
    c.verify_credentials(authed(verify(login, password), token))
        .await
        .expect("a credential check")
        .into_inner()
        .outcome()
}

async fn credentials_verify_by_email_or_username_and_fail_alike(app: TestApp) {
    let mut c = app.client.clone();
    let user = app.create_user("ivan").await;
    let svc = app.service_token();
    for login in ["ivan", "IVAN", "ivan@example.com", " Ivan@Example.com "] {
        let ok = c
            .verify_credentials(authed(verify(login, PASSWORD), &svc))
            .await
            .expect(login)
            .into_inner();
        assert_eq!(
            (ok.user_id.as_str(), ok.username.as_str()),
            (user.id.as_str(), "ivan")
        );
        assert_eq!(ok.roles, vec!["user"]);
        assert!(ok.sessions_valid_after.is_none());
    }
    // What the check found is the answer; a wrong password, an unknown
    // user and an impossible password are the same answer.
    let wrong = c
        .verify_credentials(authed(verify("ivan", "not the password at all"), &svc))
        .await
        .expect("wrong")
        .into_inner();
    let unknown = c
        .verify_credentials(authed(verify("nobody", "not the password at all"), &svc))
        .await
        .expect("unknown")
        .into_inner();
    assert_eq!(wrong.outcome(), Outcome::Invalid);
    assert!(
        wrong.user_id.is_empty() && wrong.roles.is_empty(),
        "{wrong:?}"
    );
    assert_eq!(wrong, unknown);
    let long = c
        .verify_credentials(authed(verify("ivan", &"x".repeat(200)), &svc))
        .await
        .expect("long")
        .into_inner();
    assert_eq!(long, wrong);
    app.stop().await;
}

async fn changing_the_password_needs_the_current_one_and_ends_older_sessions(app: TestApp) {
    let mut c = app.client.clone();
    let user = app.create_user("kate").await;
    let token = app.token_for(&user);
    let svc = app.service_token();
    let new = "a brand new passphrase 99";
    let wrong = c
        .change_password(authed(
            ChangePasswordRequest {
                id: "me".into(),
                current_password: "not my password".into(),
                new_password: new.into(),
            },
            &token,
        ))
        .await
        .expect_err("wrong current");
    assert_eq!(wrong.code(), Code::InvalidArgument);
    assert_eq!(
        outcome(&mut c, "kate", PASSWORD, &svc).await,
        Outcome::Valid,
        "a refused change changed the password"
    );

    let before = chrono_now_secs();
    c.change_password(authed(
        ChangePasswordRequest {
            id: "me".into(),
            current_password: PASSWORD.into(),
            new_password: new.into(),
        },
        &token,
    ))
    .await
    .expect("change");
    assert_eq!(
        outcome(&mut c, "kate", PASSWORD, &svc).await,
        Outcome::Invalid
    );
    let ok = c
        .verify_credentials(authed(verify("kate", new), &svc))
        .await
        .expect("new")
        .into_inner();
    let after = ok
        .sessions_valid_after
        .expect("sessions_valid_after recorded");
    assert!(after.seconds >= before, "{after:?}");

    // An admin resets another user's password without knowing it.
    c.change_password(authed(
        ChangePasswordRequest {
            id: user.id.clone(),
            current_password: String::new(),
            new_password: "reset by the admin 2026".into(),
        },
        &app.admin_token(),
    ))
    .await
    .expect("admin reset");
    assert_eq!(
        outcome(&mut c, "kate", "reset by the admin 2026", &svc).await,
        Outcome::Valid
    );
    // The reset revoked the token kate held (within a second, from the
    // event); she signs in again.
    wait_until_refused(&mut c, &token).await;
    let token = app.token_for(&user);
    // Weak new passwords are refused under their own field name.
    let weak = c
        .change_password(authed(
            ChangePasswordRequest {
                id: "me".into(),
                current_password: "reset by the admin 2026".into(),
                new_password: "kate@example.com".into(),
            },
            &token,
        ))
        .await
        .expect_err("weak");
    assert!(
        weak.message().contains("new_password"),
        "{}",
        weak.message()
    );
    let _ = c
        .get_user(authed(GetUserRequest { id: "me".into() }, &token))
        .await
        .expect("still there");
    app.stop().await;
}

/// Waits (up to 5 s) until `token` is refused as revoked.
async fn wait_until_refused(
    c: &mut suite_proto::user::user_service_client::UserServiceClient<tonic::transport::Channel>,
    token: &str,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let r = c
            .get_user(authed(GetUserRequest { id: "me".into() }, token))
            .await;
        match r {
            Err(s) if s.code() == Code::Unauthenticated => {
                assert_eq!(s.message(), "access token revoked");
                return;
            }
            _ if std::time::Instant::now() > deadline => panic!("never revoked: {r:?}"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

fn chrono_now_secs() -> i64 {
    crate::helpers::now() - 1
}

async fn user_status_is_for_services_and_follows_password_changes_and_deletion(app: TestApp) {
    use suite_proto::user::{DeleteUserRequest, GetUserStatusRequest};
    let mut c = app.client.clone();
    let user = app.create_user("liam").await;
    let token = app.token_for(&user);
    let svc = app.service_token();
    let ask = || GetUserStatusRequest {
        user_id: user.id.clone(),
        ..Default::default()
    };
    let status = c
        .get_user_status(authed(ask(), &svc))
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        (status.user_id.as_str(), status.roles.as_slice()),
        (user.id.as_str(), &["user".to_owned()][..])
    );
    assert!(status.sessions_valid_after.is_none());
    for who in [&token, &app.admin_token()] {
        let err = c
            .get_user_status(authed(ask(), who))
            .await
            .expect_err("not a service");
        assert_eq!(err.code(), Code::PermissionDenied);
    }
    c.change_password(authed(
        ChangePasswordRequest {
            id: "me".into(),
            current_password: PASSWORD.into(),
            new_password: "liam changed it 2026".into(),
        },
        &token,
    ))
    .await
    .expect("change");
    let status = c
        .get_user_status(authed(ask(), &svc))
        .await
        .expect("status")
        .into_inner();
    assert!(status.sessions_valid_after.is_some());
    // The change revoked the token used for it: a new one.
    let token = app.token_for(&user);
    c.delete_user(authed(
        DeleteUserRequest {
            id: "me".into(),
            etag: String::new(),
        },
        &token,
    ))
    .await
    .expect("delete");
    let err = c
        .get_user_status(authed(ask(), &svc))
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound);
    app.stop().await;
}

/// Wrong passwords leave fixed-size counters (whatever the login's length),
/// and counters that can never matter again are pruned.
async fn failure_counters_are_fixed_size_and_pruned(app: TestApp) {
    use suite_user::throttle::{Account, Keys};
    let mut c = app.client.clone();
    let svc = app.service_token();
    let mut ghost = verify("ghost", "a wrong password here");
    ghost.client_address = "192.0.2.7".into();
    let _ = c.verify_credentials(authed(ghost, &svc)).await;
    let huge = c
        .verify_credentials(authed(verify(&"x".repeat(60_000), "pw-whatever"), &svc))
        .await
        .expect_err("too long");
    assert_eq!(huge.code(), Code::InvalidArgument, "{huge:?}");
    let config = crate::helpers::test_config(&app.db.url, &app.key);
    let db = suite_user::startup::open_database(&config).expect("database");
    let store = suite_user::store::open(&db);
    let ghost = suite_proto::Login::parse("ghost").expect("a login");
    let keys = Keys::new(Account::Unknown(&ghost), "192.0.2.7");
    for key in [&keys.pair, &keys.account] {
        let f = store.failures(key).await.expect("read").expect("counted");
        assert_eq!(f.count, 1);
    }
    let now = chrono::Utc::now();
    let later = now + chrono::Duration::seconds(1);
    assert_eq!(
        store
            .prune_failures(now - chrono::Duration::hours(1), now)
            .await
            .expect("prune"),
        0
    );
    assert_eq!(store.prune_failures(later, later).await.expect("prune"), 2);
    assert!(store.failures(&keys.pair).await.expect("read").is_none());
    app.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_app;
    failure_counters_are_fixed_size_and_pruned,
    credentials_verify_by_email_or_username_and_fail_alike,
    changing_the_password_needs_the_current_one_and_ends_older_sessions,
    user_status_is_for_services_and_follows_password_changes_and_deletion,
);
