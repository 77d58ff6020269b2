//! Users imported with the hashes they had elsewhere: the accepted range of
//! hash parameters, and bcrypt's 72 bytes.

use crate::helpers::{TestApp, authed};
use suite_proto::user::{
    ImportResult, ImportUsersRequest, ImportedUser, LookupUserRequest, VerifyCredentialsRequest,
    import_result::Outcome as Imported, verify_credentials_response::Outcome,
};
use tonic::Code;

/// A well-formed bcrypt string of `cost` (salt and digest made up: the
/// range is checked before any verification could be).
fn bcrypt_of_cost(cost: u32) -> String {
    format!("$2b${cost:02}$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234")
}

fn argon2_of(m: u32, t: u32, p: u32) -> String {
    format!("$argon2id$v=19$m={m},t={t},p={p}$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
}

fn bcrypt_hash(password: &str, cost: u32) -> String {
    bcrypt::hash(password, cost).expect("bcrypt")
}

pub fn user(name: &str, password_hash: &str) -> ImportedUser {
    ImportedUser {
        username: name.into(),
        email: format!("{name}@example.com"),
        display_name: String::new(),
        password_hash: password_hash.into(),
        create_time: None,
    }
}

/// Imports `users` as the operator's suitectl does; each item's result.
pub async fn import(app: &TestApp, users: Vec<ImportedUser>) -> Vec<ImportResult> {
    let token = app.service_token_of(suite_tokens::roles::OPERATOR_SUBJECT);
    app.client
        .clone()
        .import_users(authed(ImportUsersRequest { users }, &token))
        .await
        .expect("import")
        .into_inner()
        .results
}

/// The outcome of a login's credential check.
pub async fn login(app: &TestApp, login: &str, password: &str) -> Outcome {
    let req = VerifyCredentialsRequest {
        login: login.into(),
        password: password.into(),
        ..VerifyCredentialsRequest::default()
    };
    app.client
        .clone()
        .verify_credentials(authed(req, &app.service_token()))
        .await
        .expect("a credential check")
        .into_inner()
        .outcome()
}

/// The password hash the store holds for `login`.
async fn stored_hash(app: &TestApp, login: &str) -> String {
    let config = crate::helpers::test_config(&app.db.url, &app.key);
    let db = suite_user::startup::open_database(&config).expect("database");
    suite_user::store::open(&db)
        .find_by_login(login)
        .await
        .expect("read")
        .expect("the user")
        .password_hash
}

async fn import_refuses_hash_parameters_outside_the_range_naming_the_field(app: TestApp) {
    let password = "imported passphrase of ours 7";
    let refused = [
        ("cost4", bcrypt_of_cost(4), "bcrypt cost 4"),
        ("cost9", bcrypt_of_cost(9), "bcrypt cost 9"),
        ("cost13", bcrypt_of_cost(13), "bcrypt cost 13"),
        ("cost16", bcrypt_of_cost(16), "bcrypt cost 16"),
        ("weak.argon2", argon2_of(4096, 2, 1), "m=4096"),
        ("cheap.argon2", argon2_of(16384, 2, 1), "m×t=32768"),
        ("huge.argon2", argon2_of(262_144, 2, 1), "m=262144"),
        ("slow.argon2", argon2_of(65536, 8, 1), "m×t=524288"),
    ];
    let accepted = [
        ("cost10", bcrypt_hash(password, 10)),
        ("cost12", bcrypt_hash(password, 12)),
        ("owasp.argon2", argon2_of(19456, 2, 1)),
    ];
    // Good and bad together: a bad item fails alone.
    let mut users: Vec<ImportedUser> = refused.iter().map(|(n, h, _)| user(n, h)).collect();
    users.extend(accepted.iter().map(|(n, h)| user(n, h)));
    let results = import(&app, users).await;
    assert_eq!(results.len(), refused.len() + accepted.len());
    for ((name, _, named), result) in refused.iter().zip(&results) {
        assert_eq!(result.outcome(), Imported::Failed, "{name}: {result:?}");
        assert!(
            result.reason.starts_with("password_hash: ") && result.reason.contains(named),
            "{name}: {}",
            result.reason
        );
        let looked_up = app
            .client
            .clone()
            .lookup_user(authed(
                LookupUserRequest {
                    login: (*name).into(),
                },
                &app.admin_token(),
            ))
            .await
            .expect_err("nothing stored");
        assert_eq!(looked_up.code(), Code::NotFound, "{name}");
    }
    for ((name, _), result) in accepted.iter().zip(&results[refused.len()..]) {
        assert_eq!(result.outcome(), Imported::Created, "{name}: {result:?}");
    }
    for name in ["cost10", "cost12"] {
        assert_eq!(login(&app, name, password).await, Outcome::Valid, "{name}");
        assert!(stored_hash(&app, name).await.starts_with("$argon2id$"));
    }
    app.stop().await;
}

async fn a_bcrypt_login_over_72_bytes_signs_in_but_never_replaces_the_hash(app: TestApp) {
    let prefix = &"long passphrase ".repeat(5)[..72];
    let owners = format!("{prefix}and the owner's own tail");
    let attackers = format!("{prefix}and anything else");
    let short = "short enough for bcrypt 42";
    let hashes = [
        bcrypt_hash(&owners, 10),
        bcrypt_hash(short, 10),
        bcrypt_hash(prefix, 10),
    ];
    let results = import(
        &app,
        vec![
            user("lena", &hashes[0]),
            user("milo", &hashes[1]),
            user("nell", &hashes[2]),
        ],
    )
    .await;
    assert!(
        results.iter().all(|r| r.outcome() == Imported::Created),
        "{results:?}"
    );

    // bcrypt checks 72 bytes: another tail signs in (that much bcrypt
    // cannot tell), but the hash stays, so it does not sign in for good...
    assert_eq!(login(&app, "lena", &attackers).await, Outcome::Valid);
    assert_eq!(stored_hash(&app, "lena").await, hashes[0], "replaced");
    // ...and the owner's own password still works, without replacing it
    // either (bcrypt did not check its tail).
    assert_eq!(login(&app, "lena", &owners).await, Outcome::Valid);
    assert_eq!(stored_hash(&app, "lena").await, hashes[0], "replaced");

    // A password bcrypt checked whole (72 bytes at most) replaces it.
    for (name, password) in [("milo", short), ("nell", prefix)] {
        assert_eq!(login(&app, name, password).await, Outcome::Valid, "{name}");
        let upgraded = stored_hash(&app, name).await;
        assert!(upgraded.starts_with("$argon2id$"), "{name}: {upgraded}");
        assert_eq!(login(&app, name, password).await, Outcome::Valid, "{name}");
        assert_eq!(
            login(&app, name, &format!("{password}!")).await,
            Outcome::Invalid,
            "{name}"
        );
    }
    app.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_app;
    import_refuses_hash_parameters_outside_the_range_naming_the_field,
    a_bcrypt_login_over_72_bytes_signs_in_but_never_replaces_the_hash,
);
