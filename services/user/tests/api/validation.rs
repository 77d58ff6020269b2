use crate::helpers::{PASSWORD, TestApp, authed};
use suite_proto::user::{
    ChangePasswordRequest, CreateUserRequest, ListUsersRequest, UpdateUserRequest, User,
};
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The fields named by a status's `google.rpc.BadRequest` details.
fn bad_fields(status: &Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn create(username: &str, email: &str, password: &str, display_name: &str) -> CreateUserRequest {
    CreateUserRequest {
        username: username.into(),
        email: email.into(),
        password: password.into(),
        display_name: display_name.into(),
        roles: vec![],
    }
}

async fn every_bad_registration_field_is_named_and_nothing_is_written(app: TestApp) {
    let mut client = app.client.clone();
    let long_name = "n".repeat(65);
    let cases: Vec<(CreateUserRequest, Vec<&str>)> = vec![
        (
            create("ab", "a@example.com", PASSWORD, ""),
            vec!["username"],
        ),
        (
            create(&"a".repeat(33), "a@example.com", PASSWORD, ""),
            vec!["username"],
        ),
        (
            create("bad name", "a@example.com", PASSWORD, ""),
            vec!["username"],
        ),
        (
            create("bad!", "a@example.com", PASSWORD, ""),
            vec!["username"],
        ),
        (create("valid", "not-an-email", PASSWORD, ""), vec!["email"]),
        (create("valid", "a@b", PASSWORD, ""), vec!["email"]),
        (
            create("valid", "a@example.com", "short", ""),
            vec!["password"],
        ),
        (
            create("valid", "a@example.com", &"x".repeat(129), ""),
            vec!["password"],
        ),
        (
            create("valid", "a@example.com", PASSWORD, &long_name),
            vec!["display_name"],
        ),
        (
            create("valid", "a@example.com", PASSWORD, "tab\there"),
            vec!["display_name"],
        ),
        (
            create("", "", "", ""),
            vec!["username", "email", "password"],
        ),
        (
            CreateUserRequest {
                roles: vec!["root".into()],
                ..create("valid", "a@example.com", PASSWORD, "")
            },
            vec!["roles"],
        ),
    ];
    for (req, fields) in cases {
        let err = client.create_user(req).await.expect_err("invalid input");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        assert_eq!(bad_fields(&err), fields, "{}", err.message());
    }
    let admin = app.admin_token();
    let list = client
        .list_users(authed(ListUsersRequest::default(), &admin))
        .await
        .expect("list");
    assert_eq!(
        list.into_inner().total_size,
        0,
        "a refused registration wrote something"
    );
    app.stop().await;
}

async fn a_megabyte_password_is_refused_cheaply(app: TestApp) {
    let mut client = app.client.clone();
    // Beyond the message-size limit the transport refuses it; below, validation does.
    for size in [1 << 20, 16 * 1024] {
        let err = client
            .create_user(create("valid", "a@example.com", &"p".repeat(size), ""))
            .await
            .expect_err("too long");
        assert!(
            matches!(
                err.code(),
                Code::InvalidArgument | Code::ResourceExhausted | Code::OutOfRange
            ),
            "{err:?}"
        );
    }
    app.stop().await;
}

async fn guessable_passwords_are_refused(app: TestApp) {
    let mut client = app.client.clone();
    for password in [
        "password",
        "password123",
        "qwertyuiop",
        "12345678",
        "gracehopper1",
        "gracehopper@example.com",
    ] {
        let err = client
            .create_user(create(
                "gracehopper",
                "gracehopper@example.com",
                password,
                "",
            ))
            .await
            .expect_err(password);
        assert_eq!(err.code(), Code::InvalidArgument, "{password}");
        assert_eq!(bad_fields(&err), vec!["password"], "{password}");
    }
    app.stop().await;
}

async fn bad_updates_and_password_changes_name_their_fields(app: TestApp) {
    let mut client = app.client.clone();
    let user = app.create_user("heidi").await;
    let token = app.token_for(&user);
    let err = app
        .update(
            &token,
            User {
                id: user.id.clone(),
                username: "x".into(),
                email: "nope".into(),
                ..User::default()
            },
            &[],
        )
        .await
        .expect_err("invalid");
    assert_eq!(bad_fields(&err), vec!["user.username", "user.email"]);
    let err = client
        .update_user(authed(
            UpdateUserRequest {
                user: None,
                update_mask: None,
            },
            &token,
        ))
        .await
        .expect_err("no user");
    assert_eq!(bad_fields(&err), vec!["user"]);
    let err = app
        .update(
            &token,
            User {
                id: "not-a-uuid".into(),
                ..User::default()
            },
            &[],
        )
        .await
        .expect_err("bad id");
    assert_eq!(bad_fields(&err), vec!["user.id"]);
    let err = client
        .change_password(authed(
            ChangePasswordRequest {
                id: "me".into(),
                current_password: String::new(),
                new_password: "short".into(),
            },
            &token,
        ))
        .await
        .expect_err("invalid");
    assert_eq!(bad_fields(&err), vec!["new_password", "current_password"]);
    let err = client
        .list_users(authed(
            ListUsersRequest {
                page_size: -1,
                page_token: String::new(),
            },
            &token,
        ))
        .await
        .expect_err("negative");
    assert_eq!(bad_fields(&err), vec!["page_size"]);
    let err = client
        .list_users(authed(
            ListUsersRequest {
                page_size: 5,
                page_token: "garbage!".into(),
            },
            &token,
        ))
        .await
        .expect_err("bad token");
    assert_eq!(bad_fields(&err), vec!["page_token"]);
    app.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_app;
    every_bad_registration_field_is_named_and_nothing_is_written,
    a_megabyte_password_is_refused_cheaply,
    guessable_passwords_are_refused,
    bad_updates_and_password_changes_name_their_fields,
);
