//! `suitectl tokens …` against the launched suite: a personal access token
//! created for a user with the operator's key, listed without its secret,
//! used at the gateway, revoked and then refused.

use crate::helpers::{Backend, Suite, register_as, spawn_suite};
use serde_json::Value;
use std::{process::Stdio, time::Duration};

/// What one suitectl run did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }
}

/// Runs suitectl against `s` with `args`, signing its own service token with
/// the suite's key (nothing from the test's own environment leaks in; stdin
/// is empty, so it is not a terminal).
async fn ctl(s: &Suite, args: &[&str]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_suitectl"));
    cmd.args(args)
        .env_clear()
        .env("USER_SERVICE_URL", format!("http://{}", s.user))
        .env("AUTH_SERVICE_URL", format!("http://{}", s.auth))
        .env("SIGNING_KEY_FILE", s.signing_key_file())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A child process is blocking work: off the runtime's threads.
    tokio::task::spawn_blocking(move || {
        let out = cmd.output().expect("suitectl runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("joined")
}

/// `ctl` with `--output json`, expecting exit code 0: its stdout as JSON.
async fn ok_json(s: &Suite, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let run = ctl(s, &all).await;
    assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.stdout, run.stderr);
    run.json()
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
    let created = ok_json(
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
    let listed = ctl(
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
    let table = ctl(&s, &["tokens", "list", &ada_id]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.starts_with("ID"), "{}", table.stdout);
    for part in ["LAST USED", id.as_str(), prefix.as_str(), "never"] {
        assert!(table.stdout.contains(part), "{part}: {}", table.stdout);
    }
    assert!(!table.stdout.contains(&secret), "{}", table.stdout);

    // For people, the secret once with its warning.
    let text = ctl(
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
    let too_long = ctl(
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
    let no_expiry = ctl(
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
    let unconfirmed = ctl(&s, &["tokens", "revoke", &id]).await;
    assert_eq!(unconfirmed.code, 2, "{}", unconfirmed.stderr);
    assert!(
        unconfirmed.stderr.contains("--yes"),
        "{}",
        unconfirmed.stderr
    );
    assert_eq!(me_status(&s, &secret).await, 200, "not revoked yet");
    let revoked = ctl(&s, &["tokens", "revoke", &id, "--yes"]).await;
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
    let after = ok_json(&s, &["tokens", "list", "ada"]).await;
    assert!(
        after
            .as_array()
            .is_some_and(|l| l.iter().all(|t| t["id"] != id.as_str())),
        "{after}"
    );
    s.stop().await;
}
