//! `suitectl tokens …` against the launched suite: a personal access token
//! created for a user with the operator's key, listed without its secret,
//! used at the gateway, revoked and then refused.

use super::*;
use crate::helpers::register_as;

/// `ctl` with nothing on stdin (not a terminal) and no more environment.
async fn run(s: &Suite, args: &[&str]) -> Run {
    ctl(s, args, "", &[]).await
}

/// `ok_json` likewise.
async fn ok_json_plain(s: &Suite, args: &[&str]) -> Value {
    ok_json(s, args, "", &[]).await
}

/// `GET /api/v1/users/me` at the gateway with `token`: the status.
async fn me_status(s: &Suite, token: &str) -> u16 {
    s.get("/api/v1/users/me", Some(token))
        .await
        .expect("GET /api/v1/users/me")
        .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suitectl_creates_lists_and_revokes_personal_access_tokens() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    let ada = register_as(&s, "ada", "ada@example.com", "correct horse battery staple").await;
    let ada_id = ada.json["id"].as_str().expect("id").to_owned();

    // Created for ada (named by username) with the operator's key.
    let created = ok_json_plain(
        &s,
        &[
            "tokens",
            "create",
            "ada",
            "--name",
            "ci deploy",
            "--scope",
            "user:read",
            "--expires-in",
            "30d",
        ],
    )
    .await;
    let secret = created["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("suitepat_"), "{created}");
    assert_eq!(secret.chars().count(), 47, "{created}");
    let token = &created["token"];
    let id = token["id"].as_str().expect("id").to_owned();
    let prefix = token["prefix"].as_str().expect("prefix").to_owned();
    assert!(
        secret.starts_with(&prefix) && prefix.len() < secret.len(),
        "{created}"
    );
    assert_eq!(token["user_id"], ada_id.as_str());
    assert_eq!(token["name"], "ci deploy");
    assert_eq!(token["scopes"], serde_json::json!(["user:read"]));
    let expires =
        chrono::DateTime::parse_from_rfc3339(token["expire_time"].as_str().expect("expiry"))
            .expect("RFC 3339");
    let in_30_days = chrono::Utc::now() + chrono::Duration::days(30);
    assert!(
        (expires.with_timezone(&chrono::Utc) - in_30_days)
            .num_minutes()
            .abs()
            < 5,
        "{created}"
    );

    // Listed (by email, and by id) with its prefix, never its secret.
    let listed = run(
        &s,
        &["tokens", "list", "ada@example.com", "--output", "json"],
    )
    .await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(!listed.stdout.contains(&secret), "{}", listed.stdout);
    let list = listed.json();
    let row = list
        .as_array()
        .and_then(|l| l.iter().find(|t| t["id"] == id.as_str()))
        .cloned()
        .unwrap_or_else(|| panic!("the token is listed: {list}"));
    assert_eq!(row["prefix"], prefix.as_str());
    assert_eq!(row["name"], "ci deploy");
    assert!(row.get("secret").is_none(), "{row}");
    let table = run(&s, &["tokens", "list", &ada_id]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.starts_with("ID"), "{}", table.stdout);
    for part in ["LAST USED", id.as_str(), prefix.as_str(), "never"] {
        assert!(table.stdout.contains(part), "{part}: {}", table.stdout);
    }
    assert!(!table.stdout.contains(&secret), "{}", table.stdout);

    // For people, the secret once with its warning.
    let text = run(
        &s,
        &[
            "tokens",
            "create",
            "ada",
            "--name",
            "laptop",
            "--scope",
            "user:read",
            "--scope",
            "user:write",
            "--expires-in",
            "12h",
        ],
    )
    .await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.contains("secret   suitepat_"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("will not be shown again"),
        "{}",
        text.stdout
    );

    // Refused input: exit code 1, the field named.
    let too_long = run(
        &s,
        &[
            "tokens",
            "create",
            "ada",
            "--name",
            "x",
            "--scope",
            "user:read",
            "--expires-in",
            "400d",
        ],
    )
    .await;
    assert_eq!(too_long.code, 1, "{}", too_long.stderr);
    assert!(
        too_long.stderr.contains("InvalidArgument"),
        "{}",
        too_long.stderr
    );
    assert!(
        too_long.stderr.contains("expire_time"),
        "{}",
        too_long.stderr
    );
    // No expiry at all: a usage error naming the flags.
    let no_expiry = run(
        &s,
        &[
            "tokens",
            "create",
            "ada",
            "--name",
            "x",
            "--scope",
            "user:read",
        ],
    )
    .await;
    assert_eq!(no_expiry.code, 2, "{}", no_expiry.stderr);
    assert!(
        no_expiry.stderr.contains("--expires-in"),
        "{}",
        no_expiry.stderr
    );

    // The secret works at the gateway.
    assert_eq!(me_status(&s, &secret).await, 200);

    // Revoking asks first; without a terminal, only --yes does it.
    let unconfirmed = run(&s, &["tokens", "revoke", &id]).await;
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.stderr);
    assert!(
        unconfirmed.stderr.contains("--yes"),
        "{}",
        unconfirmed.stderr
    );
    assert_eq!(me_status(&s, &secret).await, 200, "not revoked yet");
    let revoked = run(&s, &["tokens", "revoke", &id, "--yes"]).await;
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert!(revoked.stdout.contains("revoked"), "{}", revoked.stdout);

    // Refused from now on: within the deadline, 401.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = me_status(&s, &secret).await;
        if status == 401 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a revoked token still answers {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = ok_json_plain(&s, &["tokens", "list", "ada"]).await;
    assert!(
        after
            .as_array()
            .is_some_and(|l| l.iter().all(|t| t["id"] != id.as_str())),
        "{after}"
    );
    s.stop().await;
}
