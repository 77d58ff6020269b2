use crate::helpers::{PASSWORD, TestApp, authed, claims};
use suite_proto::user::{
    ChangePasswordRequest, CreateUserRequest, DeleteUserRequest, GetUserRequest,
    ImportUsersRequest, ListUsersRequest, UpdateUserRequest, User, VerifyCredentialsRequest,
};
use suite_tokens::{Audience, SigningKey};
use tonic::{Code, Request};

async fn who_may_call_what(app: TestApp) {
    let mut c = app.client.clone();
    let alice = app.create_user("alice").await;
    let bob = app.create_user("bob").await;
    let alice_t = app.token_for(&alice);
    let admin_t = app.admin_token();
    let service_t = app.service_token();
    let get = |id: &str| GetUserRequest { id: id.into() };

    // Anonymous: only registration.
    assert_eq!(
        c.get_user(Request::new(get(&alice.id)))
            .await
            .expect_err("anon")
            .code(),
        Code::Unauthenticated
    );
    assert_eq!(
        c.list_users(ListUsersRequest::default())
            .await
            .expect_err("anon")
            .code(),
        Code::Unauthenticated
    );
    let verify = VerifyCredentialsRequest {
        login: "alice".into(),
        password: PASSWORD.into(),
        ..VerifyCredentialsRequest::default()
    };
    assert_eq!(
        c.verify_credentials(verify.clone())
            .await
            .expect_err("anon")
            .code(),
        Code::Unauthenticated
    );

    // Self: yes. Other user: PermissionDenied, whether or not the id exists.
    assert!(c.get_user(authed(get(&alice.id), &alice_t)).await.is_ok());
    let other = c
        .get_user(authed(get(&bob.id), &alice_t))
        .await
        .expect_err("other");
    let nobody = c
        .get_user(authed(get(&uuid::Uuid::now_v7().to_string()), &alice_t))
        .await
        .expect_err("nobody");
    assert_eq!(
        (other.code(), other.message()),
        (Code::PermissionDenied, nobody.message())
    );
    assert_eq!(nobody.code(), Code::PermissionDenied);
    let upd = UpdateUserRequest {
        user: Some(User {
            id: bob.id.clone(),
            display_name: "x".into(),
            ..User::default()
        }),
        update_mask: None,
    };
    assert_eq!(
        c.update_user(authed(upd.clone(), &alice_t))
            .await
            .expect_err("other")
            .code(),
        Code::PermissionDenied
    );
    let del = DeleteUserRequest {
        id: bob.id.clone(),
        etag: String::new(),
    };
    assert_eq!(
        c.delete_user(authed(del.clone(), &alice_t))
            .await
            .expect_err("other")
            .code(),
        Code::PermissionDenied
    );
    let pw = ChangePasswordRequest {
        id: bob.id.clone(),
        current_password: PASSWORD.into(),
        new_password: "another fine passphrase 7".into(),
    };
    assert_eq!(
        c.change_password(authed(pw.clone(), &alice_t))
            .await
            .expect_err("other")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        c.verify_credentials(authed(verify.clone(), &alice_t))
            .await
            .expect_err("user")
            .code(),
        Code::PermissionDenied
    );

    // A user may not grant themself roles, by registration or update.
    let self_admin = UpdateUserRequest {
        user: Some(User {
            id: alice.id.clone(),
            roles: vec!["admin".into()],
            ..User::default()
        }),
        update_mask: None,
    };
    assert_eq!(
        c.update_user(authed(self_admin, &alice_t))
            .await
            .expect_err("mass assignment")
            .code(),
        Code::PermissionDenied
    );
    let sneaky = CreateUserRequest {
        username: "mallory".into(),
        email: "m@example.com".into(),
        password: PASSWORD.into(),
        display_name: String::new(),
        roles: vec!["admin".into()],
    };
    assert_eq!(
        c.create_user(sneaky.clone())
            .await
            .expect_err("anon admin")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        c.create_user(authed(sneaky.clone(), &alice_t))
            .await
            .expect_err("user admin")
            .code(),
        Code::PermissionDenied
    );

    // Admin: everything but credential checks; may grant roles.
    assert!(c.get_user(authed(get(&bob.id), &admin_t)).await.is_ok());
    assert!(c.update_user(authed(upd, &admin_t)).await.is_ok());
    let made = c
        .create_user(authed(sneaky, &admin_t))
        .await
        .expect("admin creates admin")
        .into_inner()
        .user
        .expect("user");
    assert_eq!(made.roles, vec!["admin"]);
    assert_eq!(
        c.verify_credentials(authed(verify.clone(), &admin_t))
            .await
            .expect_err("admin")
            .code(),
        Code::PermissionDenied
    );

    // A service (the auth service): verifies credentials and reads users,
    // but changes nothing and imports nobody.
    assert!(
        c.verify_credentials(authed(verify, &service_t))
            .await
            .is_ok()
    );
    assert!(c.get_user(authed(get(&bob.id), &service_t)).await.is_ok());
    assert_eq!(
        c.delete_user(authed(del.clone(), &service_t))
            .await
            .expect_err("service")
            .code(),
        Code::PermissionDenied
    );
    assert_eq!(
        c.import_users(authed(ImportUsersRequest::default(), &service_t))
            .await
            .expect_err("service")
            .code(),
        Code::PermissionDenied
    );
    // The operator's suitectl (a service token it mints with the signing
    // key) may do what an admin may.
    let operator_t = app.service_token_of(suite_tokens::roles::OPERATOR_SUBJECT);
    assert!(
        c.delete_user(authed(del.clone(), &operator_t))
            .await
            .is_ok()
    );
    assert_eq!(
        c.delete_user(authed(del, &admin_t))
            .await
            .expect_err("already deleted")
            .code(),
        Code::NotFound
    );
    app.stop().await;
}

async fn list_shows_others_only_their_public_fields(app: TestApp) {
    let mut c = app.client.clone();
    let alice = app.create_user("alice").await;
    app.create_user("bob").await;
    let page = c
        .list_users(authed(ListUsersRequest::default(), &app.token_for(&alice)))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(page.users.len(), 2);
    for u in &page.users {
        if u.id == alice.id {
            assert_eq!((u.email.as_str(), u.roles.len()), ("alice@example.com", 1));
        } else {
            assert_eq!(
                (u.email.as_str(), u.roles.len(), u.etag.as_str()),
                ("", 0, "")
            );
        }
    }
    let page = c
        .list_users(authed(ListUsersRequest::default(), &app.admin_token()))
        .await
        .expect("list")
        .into_inner();
    assert!(
        page.users
            .iter()
            .all(|u| !u.email.is_empty() && !u.roles.is_empty())
    );
    app.stop().await;
}

async fn expired_forged_and_foreign_tokens_are_refused(app: TestApp) {
    let mut c = app.client.clone();
    let alice = app.create_user("alice").await;
    let get = || GetUserRequest { id: "me".into() };
    let mut bad = Vec::new();

    let mut expired = claims(&alice.id, &["user"]);
    expired.exp = crate::helpers::now() - 3600;
    bad.push(("expired", app.sign(&expired)));
    let mut early = claims(&alice.id, &["user"]);
    early.nbf = crate::helpers::now() + 3600;
    bad.push(("not yet valid", app.sign(&early)));
    let mut foreign_iss = claims(&alice.id, &["user"]);
    foreign_iss.iss = "someone-else".into();
    bad.push(("wrong issuer", app.sign(&foreign_iss)));
    let mut foreign_aud = claims(&alice.id, &["user"]);
    foreign_aud.aud = Audience::One("another-api".into());
    bad.push(("wrong audience", app.sign(&foreign_aud)));
    // Same key id, different key: a forgery.
    let forger = SigningKey::generate(app.key.kid()).expect("key");
    bad.push((
        "forged",
        forger
            .sign(&claims(&alice.id, &["user", "admin"]))
            .expect("sign"),
    ));
    let stranger = SigningKey::generate("unknown-kid").expect("key");
    bad.push((
        "unknown key",
        stranger.sign(&claims(&alice.id, &["user"])).expect("sign"),
    ));
    // alg=none and HS256 (with the public key as a secret) are refused outright.
    let good = app.token_for(&alice);
    let payload = good.split('.').nth(1).expect("payload").to_owned();
    bad.push((
        "alg none",
        format!("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.{payload}."),
    ));
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            typ: Some("at+jwt".into()),
            kid: Some(app.key.kid().into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims(&alice.id, &["admin"]),
        &jsonwebtoken::EncodingKey::from_secret(b"public"),
    )
    .expect("hs256");
    bad.push(("hs256", hs));
    // A JWT of another type (say an ID token), validly signed, is not an access token.
    let id_token = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            typ: Some("JWT".into()),
            kid: Some(app.key.kid().into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA)
        },
        &claims(&alice.id, &["user"]),
        app.key.encoding_key(),
    )
    .expect("id token");
    bad.push(("typ JWT", id_token));
    bad.push(("garbage", "not.a.token".into()));

    for (what, token) in bad {
        let err = c.get_user(authed(get(), &token)).await.expect_err(what);
        assert_eq!(err.code(), Code::Unauthenticated, "{what}: {err:?}");
    }
    let mut req = Request::new(get());
    req.metadata_mut().insert(
        "authorization",
        format!("Basic {good}").parse().expect("ascii"),
    );
    assert_eq!(
        c.get_user(req).await.expect_err("basic").code(),
        Code::Unauthenticated
    );
    assert!(c.get_user(authed(get(), &good)).await.is_ok());
    app.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_app;
    who_may_call_what,
    list_shows_others_only_their_public_fields,
    expired_forged_and_foreign_tokens_are_refused,
);
