//! OAuth access tokens (a `client_id` and a `scope` claim) call only what
//! their scopes allow, by the contract's `suite.api.v1.access` table; a
//! client's own token (client credentials) acts for no user.

use crate::helpers::{PASSWORD, TestApp, authed, claims};
use suite_proto::user::{
    ChangePasswordRequest, DeleteUserRequest, GetUserRequest, ListUsersRequest,
    StreamMyEventsRequest, User, VerifyCredentialsRequest,
};
use tonic::{Code, Status};
use uuid::Uuid;

/// A token `client` obtained for `user` (by its id and roles), granted `scope`.
fn delegated(app: &TestApp, user: &User, roles: &[&str], scope: &str) -> String {
    let mut c = claims(&user.id, roles);
    c.sid = Some(Uuid::now_v7().to_string());
    c.client_id = Some("app".into());
    c.scope = Some(scope.into());
    app.sign(&c)
}

/// A client's own token (client credentials): its subject is its id.
fn client_token(app: &TestApp, scope: &str) -> String {
    let mut c = claims("machine", &[]);
    c.client_id = Some("machine".into());
    c.scope = Some(scope.into());
    app.sign(&c)
}

fn denied<T: std::fmt::Debug>(result: Result<T, Status>, what: &str) -> Status {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::PermissionDenied, "{what}: {status:?}");
    status
}

async fn oauth_tokens_call_what_their_scopes_allow(app: TestApp) {
    let mut c = app.client.clone();
    let alice = app.create_user("alice").await;
    let reader = delegated(&app, &alice, &["user"], "openid user:read");
    let writer = delegated(&app, &alice, &["user"], "user:write");

    // user:read reads the profile, and nothing else.
    assert_eq!(
        app.get(&reader, "me").await.map(|u| u.id).ok(),
        Some(alice.id.clone())
    );
    let mut renamed = alice.clone();
    renamed.display_name = "Alice A.".into();
    let refused = denied(
        app.update(&reader, renamed.clone(), &["display_name"])
            .await,
        "update with user:read",
    );
    assert!(refused.message().contains("user:write"), "{refused:?}");
    let pw = ChangePasswordRequest {
        id: alice.id.clone(),
        current_password: PASSWORD.into(),
        new_password: "another fine passphrase 7".into(),
    };
    denied(
        c.change_password(authed(pw.clone(), &reader)).await,
        "password with user:read",
    );
    let del = DeleteUserRequest {
        id: alice.id.clone(),
        etag: String::new(),
    };
    denied(
        c.delete_user(authed(del.clone(), &reader)).await,
        "delete with user:read",
    );
    // Listing users is for admins: the admin scope.
    denied(
        c.list_users(authed(ListUsersRequest::default(), &reader))
            .await,
        "list with user:read",
    );

    // user:write changes the profile but does not read it.
    let updated = app
        .update(&writer, renamed, &["display_name"])
        .await
        .expect("update with user:write");
    assert_eq!(updated.display_name, "Alice A.");
    denied(app.get(&writer, &alice.id).await, "get with user:write");
    assert!(c.change_password(authed(pw, &writer)).await.is_ok());

    // The internal methods are not open to any OAuth token.
    let verify = VerifyCredentialsRequest {
        login: "alice".into(),
        password: PASSWORD.into(),
        ..VerifyCredentialsRequest::default()
    };
    let everything = delegated(&app, &alice, &["user"], "user:read user:write admin");
    denied(
        c.verify_credentials(authed(verify, &everything)).await,
        "internal method with an OAuth token",
    );

    // The first-party token keeps its full meaning.
    let first_party = app.token_for(&alice);
    assert!(app.get(&first_party, &alice.id).await.is_ok());
    assert!(
        c.list_users(authed(ListUsersRequest::default(), &first_party))
            .await
            .is_ok()
    );
}

async fn an_admins_oauth_token_acts_as_admin_only_with_the_admin_scope(app: TestApp) {
    let mut c = app.client.clone();
    let root = app.create_user("root").await;
    let bob = app.create_user("bob").await;
    let admin = ["user", "admin"];

    let plain = delegated(&app, &root, &admin, "user:read");
    denied(
        app.get(&plain, &bob.id).await,
        "another's profile without admin",
    );
    denied(
        c.list_users(authed(ListUsersRequest::default(), &plain))
            .await,
        "list without admin",
    );

    let scoped = delegated(&app, &root, &admin, "user:read admin");
    assert_eq!(
        app.get(&scoped, &bob.id).await.map(|u| u.id).ok(),
        Some(bob.id.clone())
    );
    let page = c
        .list_users(authed(ListUsersRequest::default(), &scoped))
        .await
        .expect("list with admin")
        .into_inner();
    // Seen as an admin: others' emails are shown.
    assert!(
        page.users
            .iter()
            .any(|u| u.id == bob.id && !u.email.is_empty())
    );

    // The scope alone makes nobody an admin.
    let pretender = delegated(&app, &bob, &["user"], "user:read admin");
    denied(
        app.get(&pretender, &root.id).await,
        "admin scope without the role",
    );
}

async fn a_clients_own_token_is_refused_where_a_user_is_needed(app: TestApp) {
    let mut c = app.client.clone();
    let alice = app.create_user("alice").await;
    let machine = client_token(&app, "user:read user:write admin");

    let refused = denied(
        app.get(&machine, &alice.id).await,
        "get with a client's token",
    );
    assert!(refused.message().contains("no user"), "{refused:?}");
    denied(
        c.list_users(authed(ListUsersRequest::default(), &machine))
            .await,
        "list with a client's token",
    );
    denied(
        c.stream_my_events(authed(StreamMyEventsRequest::default(), &machine))
            .await,
        "own events with a client's token",
    );
}

async fn event_streams_need_their_scope(app: TestApp) {
    let mut c = app.client.clone();
    let alice = app.create_user("alice").await;
    let reader = delegated(&app, &alice, &["user"], "user:read");
    let writer = delegated(&app, &alice, &["user"], "user:write");
    assert!(
        c.stream_my_events(authed(StreamMyEventsRequest::default(), &reader))
            .await
            .is_ok()
    );
    denied(
        c.stream_my_events(authed(StreamMyEventsRequest::default(), &writer))
            .await,
        "own events with user:write",
    );
    denied(
        c.get_user(authed(
            GetUserRequest {
                id: alice.id.clone(),
            },
            &writer,
        ))
        .await,
        "get with user:write",
    );
}

suite_testkit::on_both_databases!(crate::helpers::spawn_app;
    oauth_tokens_call_what_their_scopes_allow,
    an_admins_oauth_token_acts_as_admin_only_with_the_admin_scope,
    a_clients_own_token_is_refused_where_a_user_is_needed,
    event_streams_need_their_scope,
);
