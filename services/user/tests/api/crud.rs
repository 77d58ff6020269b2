use crate::helpers::{TestApp, authed};
use prost::Message;
use suite_proto::user::{CreateUserRequest, DeleteUserRequest, GetUserRequest, User};
use tonic::Code;

async fn a_user_is_created_read_updated_and_deleted(app: TestApp) {
    let mut client = app.client.clone();
    let created = client
        .create_user(CreateUserRequest {
            username: "Alice".into(),
            email: "Alice@Example.COM".into(),
            password: crate::helpers::PASSWORD.into(),
            display_name: "  Alice Liddell  ".into(),
            roles: vec![],
        })
        .await
        .expect("create")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(created.username, "alice");
    assert_eq!(created.email, "alice@example.com");
    assert_eq!(created.display_name, "Alice Liddell");
    assert_eq!(created.roles, vec!["user"]);
    assert_eq!(
        uuid::Uuid::parse_str(&created.id)
            .expect("uuid")
            .get_version_num(),
        7
    );
    assert!(created.create_time.is_some() && created.update_time.is_some());
    assert!(!created.etag.is_empty());

    let token = app.token_for(&created);
    let got = app.get(&token, &created.id).await.expect("get");
    assert_eq!(got, created);
    let me = client
        .get_user(authed(GetUserRequest { id: "me".into() }, &token))
        .await
        .expect("get me")
        .into_inner()
        .user;
    assert_eq!(me.as_ref(), Some(&created));

    let updated = app
        .update(
            &token,
            User {
                id: "me".into(),
                display_name: "Al".into(),
                ..User::default()
            },
            &["display_name"],
        )
        .await
        .expect("update");
    assert_eq!(updated.display_name, "Al");
    assert_eq!(updated.username, "alice");
    assert_ne!(updated.etag, created.etag);

    client
        .delete_user(authed(
            DeleteUserRequest {
                id: created.id.clone(),
                etag: updated.etag.clone(),
            },
            &token,
        ))
        .await
        .expect("delete");
    let gone = app
        .get(&app.admin_token(), &created.id)
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    // A deleted user's name and email can be registered again.
    app.create_user("alice").await;
    app.stop().await;
}

async fn a_field_mask_changes_only_the_named_fields(app: TestApp) {
    let user = app.create_user("bob").await;
    let token = app.token_for(&user);
    let updated = app
        .update(
            &token,
            User {
                id: user.id.clone(),
                username: "robert".into(),
                email: "other@example.com".into(),
                display_name: "Bobby".into(),
                ..User::default()
            },
            &["username"],
        )
        .await
        .expect("update");
    assert_eq!(updated.username, "robert");
    assert_eq!(updated.email, "bob@example.com");
    assert_eq!(updated.display_name, "");

    // Without a mask, every field given a value is updated.
    let updated = app
        .update(
            &token,
            User {
                id: user.id.clone(),
                display_name: "Bobby".into(),
                ..User::default()
            },
            &[],
        )
        .await
        .expect("update");
    assert_eq!(
        (updated.username.as_str(), updated.display_name.as_str()),
        ("robert", "Bobby")
    );

    for (paths, why) in [
        (vec!["id"], "immutable"),
        (vec!["create_time"], "immutable"),
        (vec!["password_hash"], "unknown"),
        (vec!["nonsense"], "unknown"),
    ] {
        let err = app
            .update(
                &token,
                User {
                    id: user.id.clone(),
                    ..User::default()
                },
                &paths,
            )
            .await
            .expect_err(why);
        assert_eq!(err.code(), Code::InvalidArgument, "{paths:?}");
        assert!(err.message().contains("update_mask"), "{}", err.message());
    }
    app.stop().await;
}

async fn a_stale_etag_is_refused_and_changes_nothing(app: TestApp) {
    let mut client = app.client.clone();
    let user = app.create_user("carol").await;
    let token = app.token_for(&user);
    let first = app
        .update(
            &token,
            User {
                id: user.id.clone(),
                display_name: "One".into(),
                etag: user.etag.clone(),
                ..User::default()
            },
            &[],
        )
        .await
        .expect("first update");
    let stale = app
        .update(
            &token,
            User {
                id: user.id.clone(),
                display_name: "Two".into(),
                etag: user.etag.clone(),
                ..User::default()
            },
            &[],
        )
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);
    let stale_delete = client
        .delete_user(authed(
            DeleteUserRequest {
                id: user.id.clone(),
                etag: user.etag.clone(),
            },
            &token,
        ))
        .await
        .expect_err("stale etag");
    assert_eq!(stale_delete.code(), Code::Aborted);
    let now = app.get(&token, &user.id).await.expect("get");
    assert_eq!(now, first);
    app.stop().await;
}

async fn duplicates_are_refused_case_insensitively_naming_the_field(app: TestApp) {
    let mut client = app.client.clone();
    app.create_user("dave").await;
    for (username, email, field) in [
        ("DAVE", "new@example.com", "username"),
        ("other", "DAVE@example.com", "email"),
    ] {
        let err = client
            .create_user(CreateUserRequest {
                username: username.into(),
                email: email.into(),
                password: crate::helpers::PASSWORD.into(),
                ..CreateUserRequest::default()
            })
            .await
            .expect_err("duplicate");
        assert_eq!(err.code(), Code::AlreadyExists);
        assert!(err.message().contains(field), "{}", err.message());
    }
    // Renaming onto a taken name is refused the same way.
    let erin = app.create_user("erin").await;
    let taken = User {
        id: erin.id.clone(),
        email: "Dave@Example.com".into(),
        ..User::default()
    };
    let err = app
        .update(&app.token_for(&erin), taken, &[])
        .await
        .expect_err("taken email");
    assert_eq!(err.code(), Code::AlreadyExists);
    app.stop().await;
}

/// Each unique index maps to its own field (by the index's name), on
/// registration and on renaming, with the field in the BadRequest details.
async fn each_unique_index_names_its_own_field(app: TestApp) {
    use tonic_types::StatusExt;
    let taken = app.create_user("grace").await;
    let heidi = app.create_user("heidi").await;
    let token = app.token_for(&heidi);
    for (field, user) in [
        (
            "username",
            User {
                id: heidi.id.clone(),
                username: "GRACE".into(),
                ..User::default()
            },
        ),
        (
            "email",
            User {
                id: heidi.id.clone(),
                email: taken.email.to_uppercase(),
                ..User::default()
            },
        ),
    ] {
        let err = app.update(&token, user, &[]).await.expect_err(field);
        assert_eq!(err.code(), Code::AlreadyExists, "{field}: {err:?}");
        let fields: Vec<String> = err
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default();
        assert_eq!(fields, vec![field.to_owned()]);
    }
    // Nothing changed.
    assert_eq!(app.get(&token, &heidi.id).await.expect("get"), heidi);
    app.stop().await;
}

async fn twenty_concurrent_registrations_of_one_email_have_exactly_one_winner(app: TestApp) {
    let calls = (0..20).map(|i| {
        let mut client = app.client.clone();
        async move {
            client
                .create_user(CreateUserRequest {
                    username: format!("racer{i}"),
                    email: "race@example.com".into(),
                    password: crate::helpers::PASSWORD.into(),
                    ..CreateUserRequest::default()
                })
                .await
        }
    });
    let results = futures_join_all(calls).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(s) if s.code() == Code::AlreadyExists && s.message().contains("email")))
        .count();
    assert_eq!((wins, conflicts), (1, 19), "{results:?}");
    app.stop().await;
}

async fn no_response_ever_carries_the_password_hash(app: TestApp) {
    let mut client = app.client.clone();
    let user = app.create_user("frank").await;
    let admin = app.admin_token();
    let mut bytes = user.encode_to_vec();
    let got = client
        .get_user(authed(
            GetUserRequest {
                id: user.id.clone(),
            },
            &admin,
        ))
        .await
        .expect("get")
        .into_inner();
    bytes.extend(got.encode_to_vec());
    let list = client
        .list_users(authed(
            suite_proto::user::ListUsersRequest::default(),
            &admin,
        ))
        .await
        .expect("list")
        .into_inner();
    bytes.extend(list.encode_to_vec());
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("$argon2"), "a hash leaked: {text}");
    app.stop().await;
}

/// Awaits all futures concurrently (tokio tasks, so they truly race).
async fn futures_join_all<F, T>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

suite_testkit::on_both_databases!(crate::helpers::spawn_app;
    a_user_is_created_read_updated_and_deleted,
    a_field_mask_changes_only_the_named_fields,
    a_stale_etag_is_refused_and_changes_nothing,
    duplicates_are_refused_case_insensitively_naming_the_field,
    each_unique_index_names_its_own_field,
    twenty_concurrent_registrations_of_one_email_have_exactly_one_winner,
    no_response_ever_carries_the_password_hash,
);
