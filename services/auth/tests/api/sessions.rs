use crate::helpers::{PASSWORD, Suite, authed};
use suite_proto::auth::{ListSessionsRequest, RefreshRequest, RevokeSessionRequest};
use tonic::{Code, Request};

async fn users_list_and_revoke_their_own_sessions_only(s: Suite) {
    let jack = s.register("jack").await;
    s.register("kim").await;
    let mut c = s.client.clone();
    let phone = s.login("jack", PASSWORD).await.expect("login");
    let laptop = s.login("jack", PASSWORD).await.expect("login");
    let kim = s.login("kim", PASSWORD).await.expect("login");

    let list = |token: String| {
        let mut c = s.client.clone();
        async move {
            c.list_sessions(authed(ListSessionsRequest::default(), &token))
                .await
                .expect("list")
                .into_inner()
        }
    };
    let mine = list(laptop.access_token.clone()).await;
    let ids: Vec<&str> = mine.sessions.iter().map(|x| x.id.as_str()).collect();
    assert_eq!(
        ids,
        vec![phone.session_id.as_str(), laptop.session_id.as_str()]
    );
    assert_eq!(mine.sessions.iter().filter(|x| x.current).count(), 1);
    assert!(mine.sessions[1].current);
    assert_eq!(mine.sessions[0].user_agent, "tests/1.0");
    assert_eq!(mine.sessions[0].ip_address, "127.0.0.1");
    assert!(mine.sessions[0].expire_time.is_some());

    // Paging.
    let page = c
        .list_sessions(authed(
            ListSessionsRequest {
                page_size: 1,
                page_token: String::new(),
                ..ListSessionsRequest::default()
            },
            &laptop.access_token,
        ))
        .await
        .expect("page")
        .into_inner();
    assert_eq!(page.sessions.len(), 1);
    let rest = c
        .list_sessions(authed(
            ListSessionsRequest {
                page_size: 1,
                page_token: page.next_page_token,
                ..ListSessionsRequest::default()
            },
            &laptop.access_token,
        ))
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(rest.sessions[0].id, laptop.session_id);
    assert!(rest.next_page_token.is_empty());

    // Kim cannot see or end Jack's sessions: NotFound, as for a session that does not exist.
    let theirs = c
        .revoke_session(authed(
            RevokeSessionRequest {
                id: phone.session_id.clone(),
            },
            &kim.access_token,
        ))
        .await
        .expect_err("not hers");
    let none = c
        .revoke_session(authed(
            RevokeSessionRequest {
                id: uuid::Uuid::now_v7().to_string(),
            },
            &kim.access_token,
        ))
        .await
        .expect_err("nonexistent");
    assert_eq!(
        (theirs.code(), theirs.message()),
        (none.code(), none.message())
    );
    assert_eq!(theirs.code(), Code::NotFound);
    assert_eq!(list(kim.access_token.clone()).await.sessions.len(), 1);

    // Jack ends his phone's session; its refresh token stops working.
    c.revoke_session(authed(
        RevokeSessionRequest {
            id: phone.session_id.clone(),
        },
        &laptop.access_token,
    ))
    .await
    .expect("own session");
    let err = c
        .refresh(RefreshRequest {
            refresh_token: phone.refresh_token.clone(),
        })
        .await
        .expect_err("revoked");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(list(laptop.access_token.clone()).await.sessions.len(), 1);

    // Another service's token may neither list nor end Jack's sessions;
    // the operator's suitectl may list them.
    let jack_id = jack.id.clone();
    let other = s.service_token_of("suite-gateway");
    let listed = c
        .list_sessions(authed(
            ListSessionsRequest {
                user_id: jack_id.clone(),
                ..Default::default()
            },
            &other,
        ))
        .await
        .expect_err("another service");
    assert_eq!(listed.code(), Code::PermissionDenied);
    let ended = c
        .revoke_session(authed(
            RevokeSessionRequest {
                id: laptop.session_id.clone(),
            },
            &other,
        ))
        .await
        .expect_err("another service");
    assert_eq!(ended.code(), Code::NotFound);
    let operator = s.service_token_of(suite_tokens::roles::OPERATOR_SUBJECT);
    let seen = c
        .list_sessions(authed(
            ListSessionsRequest {
                user_id: jack_id,
                ..Default::default()
            },
            &operator,
        ))
        .await
        .expect("the operator")
        .into_inner();
    assert_eq!(seen.sessions.len(), 1);

    // An admin may end anyone's session.
    c.revoke_session(authed(
        RevokeSessionRequest {
            id: kim.session_id.clone(),
        },
        &s.admin_token(),
    ))
    .await
    .expect("admin");
    assert!(
        c.refresh(RefreshRequest {
            refresh_token: kim.refresh_token.clone()
        })
        .await
        .is_err()
    );

    // Without a token: Unauthenticated; with a bad id: InvalidArgument.
    let anon = c
        .list_sessions(Request::new(ListSessionsRequest::default()))
        .await
        .expect_err("anonymous");
    assert_eq!(anon.code(), Code::Unauthenticated);
    let bad = c
        .revoke_session(authed(
            RevokeSessionRequest { id: "nope".into() },
            &laptop.access_token,
        ))
        .await
        .expect_err("bad id");
    assert_eq!(bad.code(), Code::InvalidArgument);
    s.stop().await;
}

/// A token of `sub` as an OAuth client would hold it: `client_id` and the
/// granted `scope` (for a client's own token, `sub` is the client id).
fn oauth_token(s: &Suite, sub: &str, roles: &[&str], scope: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    s.key
        .sign(&suite_tokens::Claims {
            iss: "suite-auth".into(),
            aud: suite_tokens::Audience::One("suite".into()),
            sub: sub.into(),
            exp: now + 300,
            iat: now,
            nbf: now,
            jti: uuid::Uuid::now_v7().to_string(),
            sid: None,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            client_id: Some(if roles.is_empty() {
                sub.into()
            } else {
                "app".into()
            }),
            scope: Some(scope.into()),
            amr: Vec::new(),
            auth_time: None,
            pat: false,
        })
        .expect("sign")
}

async fn oauth_tokens_list_and_revoke_sessions_by_scope(s: Suite) {
    let jack = s.register("jack").await;
    let phone = s.login("jack", PASSWORD).await.expect("login");
    let mut c = s.client.clone();
    let reader = oauth_token(&s, &jack.id, &["user"], "user:read");
    let writer = oauth_token(&s, &jack.id, &["user"], "user:write");
    let machine = oauth_token(&s, "machine", &[], "user:read user:write");

    let listed = c
        .list_sessions(authed(ListSessionsRequest::default(), &reader))
        .await
        .expect("list with user:read")
        .into_inner();
    assert_eq!(listed.sessions.len(), 1);
    let refused = c
        .list_sessions(authed(ListSessionsRequest::default(), &writer))
        .await
        .expect_err("list with user:write");
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert!(refused.message().contains("user:read"), "{refused:?}");
    let refused = c
        .list_sessions(authed(ListSessionsRequest::default(), &machine))
        .await
        .expect_err("list with a client's own token");
    assert_eq!(refused.code(), Code::PermissionDenied);

    let revoke = RevokeSessionRequest {
        id: phone.session_id.clone(),
    };
    let refused = c
        .revoke_session(authed(revoke.clone(), &reader))
        .await
        .expect_err("revoke with user:read");
    assert_eq!(refused.code(), Code::PermissionDenied);
    // Refused before anything changed: the session is still live.
    let still = c
        .list_sessions(authed(ListSessionsRequest::default(), &reader))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(still.sessions.len(), 1);
    c.revoke_session(authed(revoke, &writer))
        .await
        .expect("revoke with user:write");
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    users_list_and_revoke_their_own_sessions_only,
    oauth_tokens_list_and_revoke_sessions_by_scope,
);

async fn dead_sessions_are_pruned(backend: crate::helpers::Backend) {
    use chrono::Utc;
    let Some(s) = crate::helpers::spawn_suite_with(backend, |c| {
        c.session_idle_timeout = std::time::Duration::from_secs(1)
    })
    .await
    else {
        return;
    };
    s.register("olga").await;
    let idle = s.login("olga", PASSWORD).await.expect("login");
    let store = suite_auth::startup::open_store(&s.auth_config).expect("store");
    let hash = suite_auth::refresh::hash(&idle.refresh_token);
    assert!(store.find_token(&hash).await.expect("find").is_some());
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let live = s.login("olga", PASSWORD).await.expect("login");
    let now = Utc::now();
    let pruned = store
        .prune(now, now - chrono::Duration::seconds(1))
        .await
        .expect("prune");
    assert_eq!(pruned, 1, "only the idle session goes");
    assert!(store.find_token(&hash).await.expect("find").is_none());
    let live_hash = suite_auth::refresh::hash(&live.refresh_token);
    assert!(store.find_token(&live_hash).await.expect("find").is_some());
    s.stop().await;
}

suite_testkit::on_both_databases!(mod own_databases; suite_testkit::db::backend;
    dead_sessions_are_pruned);
