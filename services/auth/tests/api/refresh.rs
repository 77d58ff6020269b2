use crate::helpers::{Backend, PASSWORD, Suite, authed, spawn_suite_with};
use std::time::Duration;
use suite_proto::{
    auth::{LogoutRequest, RefreshRequest, RefreshResponse},
    user::{ChangePasswordRequest, DeleteUserRequest, GetUserRequest},
};
use tonic::{Code, Status};

async fn refresh(s: &Suite, token: &str) -> Result<RefreshResponse, Status> {
    s.client
        .clone()
        .refresh(RefreshRequest {
            refresh_token: token.into(),
        })
        .await
        .map(|r| r.into_inner())
}

async fn a_refresh_rotates_the_token_and_keeps_the_session(s: Suite) {
    s.register("dora").await;
    let first = s.login("dora", PASSWORD).await.expect("login");
    let second = refresh(&s, &first.refresh_token).await.expect("refresh");
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.session_id, first.session_id);
    let third = refresh(&s, &second.refresh_token)
        .await
        .expect("refresh again");
    s.users
        .clone()
        .get_user(authed(
            GetUserRequest { id: "me".into() },
            &third.access_token,
        ))
        .await
        .expect("the refreshed access token works");
    for junk in ["", "short", &"x".repeat(43), &"y".repeat(10_000)] {
        let err = refresh(&s, junk).await.expect_err("junk");
        assert!(
            matches!(err.code(), Code::Unauthenticated | Code::InvalidArgument),
            "{err:?}"
        );
    }
    s.stop().await;
}

async fn logout_ends_the_session_and_is_idempotent(s: Suite) {
    s.register("emil").await;
    let t = s.login("emil", PASSWORD).await.expect("login");
    let mut c = s.client.clone();
    for _ in 0..2 {
        c.logout(LogoutRequest {
            refresh_token: t.refresh_token.clone(),
        })
        .await
        .expect("logout");
    }
    c.logout(LogoutRequest {
        refresh_token: "unknown-but-fine".into(),
    })
    .await
    .expect("unknown token");
    assert_eq!(
        refresh(&s, &t.refresh_token)
            .await
            .expect_err("logged out")
            .code(),
        Code::Unauthenticated
    );
    s.stop().await;
}

async fn a_password_change_or_deletion_ends_older_sessions_at_refresh(s: Suite) {
    let fay = s.register("fay").await;
    let old = s.login("fay", PASSWORD).await.expect("login");
    let mut users = s.users.clone();
    let new_password = "a much better passphrase 7";
    users
        .change_password(authed(
            ChangePasswordRequest {
                id: "me".into(),
                current_password: PASSWORD.into(),
                new_password: new_password.into(),
            },
            &old.access_token,
        ))
        .await
        .expect("change");
    assert_eq!(
        refresh(&s, &old.refresh_token)
            .await
            .expect_err("older session")
            .code(),
        Code::Unauthenticated
    );
    let fresh = s
        .login("fay", new_password)
        .await
        .expect("login with the new password");
    refresh(&s, &fresh.refresh_token)
        .await
        .expect("a newer session refreshes");

    let fresh = s.login("fay", new_password).await.expect("login");
    users
        .delete_user(authed(
            DeleteUserRequest {
                id: fay.id.clone(),
                etag: String::new(),
            },
            &fresh.access_token,
        ))
        .await
        .expect("delete");
    assert_eq!(
        refresh(&s, &fresh.refresh_token)
            .await
            .expect_err("deleted")
            .code(),
        Code::Unauthenticated
    );
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    a_refresh_rotates_the_token_and_keeps_the_session,
    logout_ends_the_session_and_is_idempotent,
    a_password_change_or_deletion_ends_older_sessions_at_refresh,
);

async fn reuse_of_a_retired_token_revokes_the_whole_session(backend: Backend) {
    let Some(s) =
        spawn_suite_with(backend, |c| c.refresh_reuse_grace = Duration::from_secs(0)).await
    else {
        return;
    };
    s.register("gus").await;
    let first = s.login("gus", PASSWORD).await.expect("login");
    let second = refresh(&s, &first.refresh_token).await.expect("refresh");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The stolen old token comes back: refused, and the family is over.
    assert_eq!(
        refresh(&s, &first.refresh_token)
            .await
            .expect_err("reuse")
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        refresh(&s, &second.refresh_token)
            .await
            .expect_err("family revoked")
            .code(),
        Code::Unauthenticated
    );
    // Other sessions of the user are not affected.
    let other = s.login("gus", PASSWORD).await.expect("login");
    refresh(&s, &other.refresh_token)
        .await
        .expect("another session");
    s.stop().await;
}

/// Inside the grace window every redemption of one token succeeds (two
/// tabs, a retried request) and hands out the same successor: the session
/// still has one live refresh token, so a retired token cannot fork it.
/// After the window, the retired token is reuse and ends the session.
async fn within_the_grace_window_redemptions_share_one_successor(backend: Backend) {
    let Some(s) =
        spawn_suite_with(backend, |c| c.refresh_reuse_grace = Duration::from_secs(2)).await
    else {
        return;
    };
    s.register("hana").await;
    let t = s.login("hana", PASSWORD).await.expect("login");
    let (a, b, c, d) = tokio::join!(
        refresh(&s, &t.refresh_token),
        refresh(&s, &t.refresh_token),
        refresh(&s, &t.refresh_token),
        refresh(&s, &t.refresh_token),
    );
    let successor = a.expect("a").refresh_token;
    for other in [b, c, d] {
        assert_eq!(other.expect("concurrent").refresh_token, successor);
    }
    for _ in 0..3 {
        let again = refresh(&s, &t.refresh_token).await.expect("retried");
        assert_eq!(again.refresh_token, successor);
    }
    assert_eq!(crate::helpers::live_refresh_tokens(&s.auth_db).await, 1);
    let next = refresh(&s, &successor)
        .await
        .expect("the successor refreshes");
    assert_ne!(next.refresh_token, successor);
    assert_eq!(crate::helpers::live_refresh_tokens(&s.auth_db).await, 1);
    // Past the window the first token is reuse: the session ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let err = refresh(&s, &t.refresh_token).await;
        if let Err(e) = &err {
            assert_eq!(e.code(), Code::Unauthenticated);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never left the window"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        refresh(&s, &next.refresh_token)
            .await
            .expect_err("session revoked")
            .code(),
        Code::Unauthenticated
    );
    s.stop().await;
}

async fn sessions_end_when_idle_and_at_their_absolute_limit(backend: Backend) {
    let Some(s) = spawn_suite_with(backend, |c| {
        c.session_idle_timeout = Duration::from_secs(1);
        c.session_max_lifetime = Duration::from_secs(60);
    })
    .await
    else {
        return;
    };
    s.register("ivy").await;
    let t = s.login("ivy", PASSWORD).await.expect("login");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        refresh(&s, &t.refresh_token)
            .await
            .expect_err("idle")
            .code(),
        Code::Unauthenticated
    );
    s.stop().await;

    let Some(s) = spawn_suite_with(backend, |c| {
        c.session_idle_timeout = Duration::from_secs(60);
        c.session_max_lifetime = Duration::from_secs(2);
    })
    .await
    else {
        return;
    };
    s.register("ivy").await;
    let t = s.login("ivy", PASSWORD).await.expect("login");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let t = refresh(&s, &t.refresh_token)
        .await
        .expect("active, within the limit");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        refresh(&s, &t.refresh_token)
            .await
            .expect_err("absolute limit")
            .code(),
        Code::Unauthenticated
    );
    s.stop().await;
}

suite_testkit::on_both_databases!(mod own_databases; suite_testkit::db::backend;
    reuse_of_a_retired_token_revokes_the_whole_session,
    within_the_grace_window_redemptions_share_one_successor,
    sessions_end_when_idle_and_at_their_absolute_limit,
);
