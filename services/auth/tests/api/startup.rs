//! The first start on empty PostgreSQL databases: nothing queries a
//! service's tables before its migrations (run by the readiness check)
//! have made them. The outbox relay used to probe the outbox from the
//! start, which the server logged as `relation "outbox" does not exist`;
//! the event consumer likewise waits for the sessions' tables.

use crate::helpers::{
    PASSWORD, Suite, TestDb, auth_config, channel, listener, start_auth, start_user, wait_serving,
};
use std::time::Duration;
use suite_proto::{
    auth::auth_service_client::AuthServiceClient, user::user_service_client::UserServiceClient,
};
use suite_testkit::PrivatePostgres;
use suite_tokens::SigningKey;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_queries_a_table_before_the_migrations_have_made_it() {
    let Some(pg) = PrivatePostgres::start().await else {
        return;
    };
    pg.create_database("users").await;
    pg.create_database("auth").await;
    let user_db = TestDb::existing(pg.url("users"));
    let auth_db = TestDb::existing(pg.url("auth"));
    let key = SigningKey::generate_thumbprinted().expect("key");
    let (user_listener, user_addr) = listener().await;
    let (auth_listener, auth_addr) = listener().await;
    let mut user_config = suite_testkit::hermetic::<suite_user::Config>();
    user_config.database_url = user_db.database_url();
    user_config.keys.jwks = Some(suite_tokens::jwks::JwksSource::grpc(auth_addr));
    user_config.password_hash_concurrency = Some(2);
    let auth_config = auth_config(&auth_db, user_addr, &key);
    let suite = Suite {
        user: start_user(user_config, user_listener),
        auth: start_auth(auth_config.clone(), auth_listener),
        key,
        user_db,
        auth_db,
        auth_config,
        users: UserServiceClient::new(channel(user_addr)),
        client: AuthServiceClient::new(channel(auth_addr)),
    };
    wait_serving(user_addr).await;
    wait_serving(auth_addr).await;

    // A session begun: its event goes through the auth service's outbox,
    // which the relay empties.
    suite.register("first").await;
    suite.login("first", PASSWORD).await.expect("login");
    suite_testkit::db::outbox_drained(&pg.url("auth"), Duration::from_secs(30)).await;
    suite.stop().await;
    let log = pg.log();
    assert!(
        !log.contains("does not exist"),
        "a query ran before the migrations:\n{log}"
    );
}
