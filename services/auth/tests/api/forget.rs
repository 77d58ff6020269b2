//! The provider acting on the user service's events: a deleted user's
//! browser sessions end and their consents are forgotten. Both services
//! share one in-process bus here, as in the launcher.

use crate::{
    clients::{confidential, register_client},
    helpers::{Backend, TestDb, spawn_suite_on_one_bus},
    oauth_steps::*,
};
use std::time::Duration;

/// One number the auth database answers.
pub async fn count(db: &TestDb, sql: &'static str) -> i64 {
    suite_testkit::with_pool!(db.url, |pool| sqlx::query_scalar(sql)
        .fetch_one(&pool)
        .await
        .expect("count"))
}

async fn a_deleted_users_browser_sessions_and_consents_go_with_them(backend: Backend) {
    let Some(s) = spawn_suite_on_one_bus(backend, |_| {}).await else {
        return;
    };
    let user = s.register("yara").await;
    let (client_id, _) = register_client(&s, confidential("Remembered")).await;
    let (_, challenge) = pkce();
    code_via_pages(&s, &client_id, &challenge, "yara").await;
    const CONSENTS: &str = "SELECT COUNT(*) FROM oauth_consents";
    const LIVE: &str = "SELECT COUNT(*) FROM browser_sessions WHERE revoked_at IS NULL";
    assert_eq!(count(&s.auth_db, CONSENTS).await, 1);
    assert_eq!(count(&s.auth_db, LIVE).await, 1);
    s.delete_self("yara", &user.id).await;
    suite_testkit::eventually(
        "the user's consents and browser sessions gone",
        Duration::from_secs(10),
        async || count(&s.auth_db, CONSENTS).await == 0 && count(&s.auth_db, LIVE).await == 0,
    )
    .await;
    s.stop().await;
}

suite_testkit::on_both_databases!(suite_testkit::db::backend;
    a_deleted_users_browser_sessions_and_consents_go_with_them,
);
