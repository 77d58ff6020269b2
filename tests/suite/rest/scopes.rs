//! OAuth access tokens through the whole suite: the scopes granted decide,
//! at the gateway and again at the services.

use super::register;
use crate::helpers::spawn_suite;
use serde_json::json;
use suite_testkit::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_read_token_reads_the_profile_but_cannot_change_it() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    let ada = register(&s, "ada").await;
    let id = ada["id"].as_str().expect("id");
    let reader = s.mint_oauth(id, &["user"], "reader-app", "openid user:read");

    let me = s.get("/api/v1/users/me", Some(&reader)).await.expect("get");
    assert_eq!((me.status, me.json["id"].clone()), (200, json!(id)));

    let patch = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&reader),
            Some(json!({"displayName": "Countess"})),
        )
        .await
        .expect("patch");
    assert_eq!(patch.status, 403, "{}", patch.json);
    assert_eq!(
        patch
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(r#"Bearer error="insufficient_scope", scope="user:write""#)
    );
    let unchanged = s.get("/api/v1/users/me", Some(&reader)).await.expect("get");
    assert!(
        unchanged.json.get("displayName").is_none(),
        "{}",
        unchanged.json
    );

    // Granted user:write, the same change goes through.
    let writer = s.mint_oauth(id, &["user"], "writer-app", "user:write");
    let patch = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&writer),
            Some(json!({"displayName": "Countess"})),
        )
        .await
        .expect("patch");
    assert_eq!(patch.status, 200, "{}", patch.json);
    s.stop().await;
}
