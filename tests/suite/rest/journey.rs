//! A user's whole life over REST, and what one user may do to another.

use super::{PASSWORD, register, token};
use crate::helpers::{Suite, login};
use serde_json::json;
use std::time::Duration;
use suite_testkit::eventually;

/// A user's life in steps: registered, signed in, listed, changed, signed
/// out and deleted.
async fn the_whole_journey_works_over_rest(s: Suite) {
    let (ada, t) = three_register_and_one_logs_in(&s).await;
    let at = token(&t, "accessToken");
    let me = s.get("/api/v1/users/me", Some(&at)).await.expect("me");
    assert_eq!((me.status, me.json["id"].clone()), (200, ada["id"].clone()));
    pages_cover_every_user_once(&s, &at).await;
    a_patch_changes_only_the_fields_in_its_body(&s, &at).await;
    a_password_change_ends_the_older_session(&s, &at, &t).await;
    a_new_session_refreshes_and_its_logout_holds(&s).await;
    a_deleted_user_and_their_token_are_gone(&s).await;
    let jwks = s.get("/.well-known/jwks.json", None).await.expect("jwks");
    assert_eq!(jwks.json["keys"][0]["kty"], "OKP");
    s.stop().await;
}

/// Ada, Bob and Cyd register; Ada logs in by email: her record and tokens.
async fn three_register_and_one_logs_in(s: &Suite) -> (serde_json::Value, serde_json::Value) {
    let ada = register(s, "ada").await;
    assert_eq!(ada["username"], "ada");
    assert!(ada.get("passwordHash").is_none());
    register(s, "bob").await;
    register(s, "cyd").await;

    let t = login(s, "ada@example.com", PASSWORD).await;
    assert_eq!(t["tokenType"], "Bearer");
    assert_eq!(t["expiresIn"], "900", "int64 as a string, per proto3 JSON");
    (ada, t)
}

/// Pagination across two pages, nothing twice.
async fn pages_cover_every_user_once(s: &Suite, at: &str) {
    let page = s
        .get("/api/v1/users?pageSize=2", Some(at))
        .await
        .expect("list");
    assert_eq!(page.json["users"].as_array().map(Vec::len), Some(2));
    assert_eq!(page.json["totalSize"], 3);
    let next = page.json["nextPageToken"].as_str().expect("more");
    let rest = s
        .get(
            &format!("/api/v1/users?pageSize=2&pageToken={next}"),
            Some(at),
        )
        .await
        .expect("list 2");
    assert_eq!(rest.json["users"].as_array().map(Vec::len), Some(1));
    assert!(rest.json.get("nextPageToken").is_none());
}

/// PATCH with only the fields to change: the mask comes from the body's keys.
async fn a_patch_changes_only_the_fields_in_its_body(s: &Suite, at: &str) {
    let patched = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(at),
            Some(json!({"displayName": "Countess"})),
        )
        .await
        .expect("patch");
    assert_eq!(
        (patched.status, patched.json["displayName"].clone()),
        (200, json!("Countess"))
    );
    let cleared = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(at),
            Some(json!({"displayName": ""})),
        )
        .await
        .expect("patch");
    assert!(
        cleared.json.get("displayName").is_none(),
        "{}",
        cleared.json
    );
    assert_eq!(cleared.json["username"], "ada");
}

/// Change the password, then refresh: the older session is over.
async fn a_password_change_ends_the_older_session(s: &Suite, at: &str, t: &serde_json::Value) {
    let rt = token(t, "refreshToken");
    let changed = s
        .request(
            "POST",
            "/api/v1/users/me:changePassword",
            Some(at),
            Some(json!({"currentPassword": PASSWORD, "newPassword": "difference engine 1822"})),
        )
        .await
        .expect("change");
    assert_eq!(changed.status, 200, "{}", changed.json);
    let stale = s.with_refresh_token("/api/v1/auth/refresh", rt).await;
    assert_eq!(stale.status, 401);
}

/// A new session: refresh, logout, and the old refresh token is refused.
async fn a_new_session_refreshes_and_its_logout_holds(s: &Suite) {
    let t = login(s, "ada", "difference engine 1822").await;
    let fresh = s
        .with_refresh_token("/api/v1/auth/refresh", token(&t, "refreshToken"))
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.json);
    let sessions = s
        .get(
            "/api/v1/auth/sessions",
            Some(&token(&fresh.json, "accessToken")),
        )
        .await
        .expect("sessions");
    assert_eq!(sessions.json["sessions"].as_array().map(Vec::len), Some(1));
    let out = s
        .with_refresh_token("/api/v1/auth/logout", token(&fresh.json, "refreshToken"))
        .await;
    assert_eq!(out.status, 200);
    let refused = s
        .with_refresh_token("/api/v1/auth/refresh", token(&fresh.json, "refreshToken"))
        .await;
    assert_eq!(refused.status, 401);
}

/// The logout ended the session's access token too: a new login deletes.
/// Gone, and the token with it: refused as revoked within a second (the
/// deletion's event), NotFound until then.
async fn a_deleted_user_and_their_token_are_gone(s: &Suite) {
    let at = token(
        &login(s, "ada", "difference engine 1822").await,
        "accessToken",
    );
    let deleted = s
        .request("DELETE", "/api/v1/users/me", Some(&at), None)
        .await
        .expect("delete");
    assert_eq!(
        (deleted.status, deleted.json.clone()),
        (204, serde_json::Value::Null)
    );
    eventually(
        "the deleted user's token is refused as revoked",
        Duration::from_secs(5),
        async || {
            let gone = s.get("/api/v1/users/me", Some(&at)).await.expect("me");
            if gone.status != 401 {
                assert_eq!(gone.status, 404);
            }
            gone.status == 401
        },
    )
    .await;
}

async fn one_user_cannot_read_change_or_delete_another(s: Suite) {
    let victim = register(&s, "victim").await;
    register(&s, "mallory").await;
    let at = token(&login(&s, "mallory", PASSWORD).await, "accessToken");
    let path = format!("/api/v1/users/{}", victim["id"].as_str().expect("id"));
    assert_eq!(s.get(&path, Some(&at)).await.expect("get").status, 403);
    let patch = s
        .request(
            "PATCH",
            &path,
            Some(&at),
            Some(json!({"email": "mallory2@example.com"})),
        )
        .await
        .expect("patch");
    assert_eq!(patch.status, 403);
    assert_eq!(
        s.request("DELETE", &path, Some(&at), None)
            .await
            .expect("delete")
            .status,
        403
    );
    let pw = s
        .request(
            "POST",
            &format!("{path}:changePassword"),
            Some(&at),
            Some(json!({"newPassword": "owned by mallory 2026"})),
        )
        .await
        .expect("change");
    assert_eq!(pw.status, 403);
    // Self-promotion is refused too.
    let promote = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"roles": ["admin"]})),
        )
        .await
        .expect("patch");
    assert_eq!(promote.status, 403);
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    the_whole_journey_works_over_rest,
    one_user_cannot_read_change_or_delete_another,
);
