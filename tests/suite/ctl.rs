//! suitectl against the launched suite: the built binary, run as an
//! operator would, with the suite's signing key or an admin's login.

use crate::helpers::{Backend, Suite, login, spawn_suite};
use serde_json::Value;
use std::{io::Write, process::Stdio, time::Duration};
use suite_proto::user::{
    StreamEventsRequest, StreamEventsResponse, user_service_client::UserServiceClient,
};
use tokio_stream::StreamExt as _;

mod clients;
mod tokens;

const ADMIN_PASSWORD: &str = "operator keeps the keys 42";

/// What one suitectl run did.
/// A suitectl run to make: its arguments, its environment, its exit code.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], i32);

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

/// Runs suitectl against `s` with `args`, `stdin` piped in and `env` set
/// (nothing from the test's own environment leaks in).
async fn ctl(s: &Suite, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_suitectl"));
    cmd.args(args)
        .env_clear()
        .env("USER_SERVICE_URL", format!("http://{}", s.user))
        .env("AUTH_SERVICE_URL", format!("http://{}", s.auth))
        .env("SIGNING_KEY_FILE", s.signing_key_file())
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let stdin = stdin.to_owned();
    // A child process is blocking work: off the runtime's threads.
    tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("suitectl starts");
        if let Some(mut pipe) = child.stdin.take() {
            let _ = pipe.write_all(stdin.as_bytes());
        }
        let out = child.wait_with_output().expect("suitectl runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    })
    .await
    .expect("joined")
}

/// `ctl` expecting exit code 0, its stdout as JSON.
async fn ok_json(s: &Suite, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--output", "json"]);
    let run = ctl(s, &all, stdin, env).await;
    assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.stdout, run.stderr);
    run.json()
}

async fn register(s: &Suite, name: &str) -> String {
    let r = s
        .request(
            "POST",
            "/api/v1/users",
            None,
            Some(serde_json::json!({
                "username": name,
                "email": format!("{name}@example.com"),
                "password": "correct horse battery staple",
            })),
        )
        .await
        .expect("register");
    assert_eq!(r.status, 201, "{}", r.json);
    r.json["id"].as_str().expect("id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suitectl_creates_the_first_admin_and_manages_users_and_sessions() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    // The first admin, with the signing key.
    let admin = ok_json(
        &s,
        &[
            "admin",
            "create",
            "--username",
            "root",
            "--email",
            "Root@Example.com",
            "--password-stdin",
        ],
        &format!("{ADMIN_PASSWORD}\n"),
        &[],
    )
    .await;
    assert_eq!(admin["roles"], serde_json::json!(["admin"]));
    assert_eq!(admin["email"], "root@example.com");
    assert!(admin.get("password_hash").is_none());
    let admin_id = admin["id"].as_str().expect("id").to_owned();

    // The admin logs in with suitectl.
    let as_admin = [
        ("SUITECTL_LOGIN", "root"),
        ("SUITECTL_PASSWORD", ADMIN_PASSWORD),
    ];
    let me = ok_json(&s, &["users", "get", "me"], "", &as_admin).await;
    assert_eq!(me["id"], admin_id.as_str());

    let ada = register(&s, "ada").await;
    let bob = register(&s, "bob").await;
    let listed = ok_json(&s, &["users", "list", "--page-size", "1"], "", &[]).await;
    let names: Vec<&str> = listed
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, vec!["root", "ada", "bob"]);
    let limited = ok_json(&s, &["users", "list", "--limit", "2"], "", &as_admin).await;
    assert_eq!(limited.as_array().map(Vec::len), Some(2));
    let text = ctl(&s, &["users", "list"], "", &[]).await;
    assert_eq!(text.code, 0);
    assert!(text.stdout.starts_with("ID"), "{}", text.stdout);
    assert!(text.stdout.contains("ada@example.com"), "{}", text.stdout);

    let found = ok_json(&s, &["users", "find", "ADA@example.COM"], "", &[]).await;
    assert_eq!(found["id"], ada.as_str());
    let missing = ctl(&s, &["users", "find", "nobody"], "", &[]).await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(missing.stderr.contains("NotFound"), "{}", missing.stderr);

    let promoted = ok_json(
        &s,
        &[
            "users",
            "set-roles",
            &ada,
            "--role",
            "admin",
            "--role",
            "user",
        ],
        "",
        &as_admin,
    )
    .await;
    assert_eq!(promoted["roles"], serde_json::json!(["admin", "user"]));
    let bad_role = ctl(&s, &["users", "set-roles", &ada, "--role", "root"], "", &[]).await;
    assert_eq!(bad_role.code, 1);
    assert!(bad_role.stderr.contains("roles"), "{}", bad_role.stderr);

    // Sessions: bob's, listed and revoked by the operator.
    let bob_login = login(&s, "bob", "correct horse battery staple").await;
    let sessions = ok_json(&s, &["sessions", "list", &bob], "", &[]).await;
    let session_id = bob_login["sessionId"].as_str().expect("session").to_owned();
    assert_eq!(sessions[0]["id"], session_id.as_str());
    assert_eq!(sessions.as_array().map(Vec::len), Some(1));
    // Another user may not list bob's sessions; bob's own listing still works.
    let ada_login = login(&s, "ada", "correct horse battery staple").await;
    let ada_token = ada_login["accessToken"].as_str().expect("token");
    let bob_token = bob_login["accessToken"].as_str().expect("token");
    let own = s
        .get("/api/v1/auth/sessions", Some(bob_token))
        .await
        .expect("own");
    assert_eq!(own.status, 200, "{}", own.json);
    let plain = register(&s, "cyd").await;
    let cy_token = login(&s, "cyd", "correct horse battery staple").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let others = s
        .get(
            &format!("/api/v1/auth/sessions?userId={bob}"),
            Some(&cy_token),
        )
        .await
        .expect("others");
    assert_eq!(others.status, 403, "{}", others.json);
    // An admin (ada, promoted above) may.
    let as_ada = s
        .get(
            &format!("/api/v1/auth/sessions?userId={bob}"),
            Some(ada_token),
        )
        .await
        .expect("admin lists");
    assert_eq!(as_ada.status, 200, "{}", as_ada.json);
    assert_eq!(as_ada.json["sessions"][0]["id"], session_id.as_str());
    let revoked = ok_json(&s, &["sessions", "revoke", &session_id], "", &[]).await;
    assert_eq!(revoked["revoked"], session_id.as_str());
    let after = ok_json(&s, &["sessions", "list", &bob], "", &as_admin).await;
    assert_eq!(after, serde_json::json!([]));

    // Deleting asks first; without a terminal, only --yes does it.
    let refused = ctl(&s, &["users", "delete", &plain], "y\n", &[]).await;
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let deleted = ok_json(&s, &["users", "delete", &plain, "--yes"], "", &[]).await;
    assert_eq!(deleted["deleted"], plain.as_str());
    let gone = ctl(&s, &["users", "get", &plain], "", &[]).await;
    assert_eq!(gone.code, 1, "{}", gone.stderr);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suitectl_exit_codes_tell_usage_from_refused_credentials_and_unreachable_services() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    // 2: the usage is wrong; 3: the credentials are refused (a missing key,
    // a wrong password, a token for another audience) or nothing answers
    // (port 9 of loopback).
    let no_password = [
        "admin",
        "create",
        "--username",
        "x1x",
        "--email",
        "x@example.com",
    ];
    let wrong_password = [
        ("SUITECTL_LOGIN", "nobody"),
        ("SUITECTL_PASSWORD", "wrong password here"),
    ];
    let cases: [Case; 5] = [
        (&["users", "frobnicate"], &[], 2),
        (&no_password, &[], 2),
        (&["users", "list"], &wrong_password, 3),
        (&["users", "list", "--audience", "elsewhere"], &[], 3),
        (
            &["users", "list"],
            &[("USER_SERVICE_URL", "http://127.0.0.1:9")],
            3,
        ),
    ];
    for (args, env, code) in cases {
        let run = ctl(&s, args, "", env).await;
        assert_eq!(run.code, code, "{args:?} {env:?}: {}", run.stderr);
    }
    // A missing key is refused, and named.
    let no_key = ctl(
        &s,
        &["users", "list"],
        "",
        &[("SIGNING_KEY_FILE", "/nonexistent/key.pem")],
    )
    .await;
    assert_eq!(no_key.code, 3, "{}", no_key.stderr);
    assert!(
        no_key.stderr.contains("/nonexistent/key.pem"),
        "{}",
        no_key.stderr
    );
    let completions = ctl(&s, &["completions", "bash"], "", &[]).await;
    assert_eq!(completions.code, 0);
    assert!(
        completions.stdout.contains("suitectl"),
        "{}",
        completions.stdout
    );
    let help = ctl(&s, &["users", "import", "--help"], "", &[]).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("password_hash"), "{}", help.stdout);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_every_replica_and_fails_when_a_service_has_none_serving() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    // `localhost` may resolve to more than one address: each is a row.
    let replicas = ok_json(&s, &["health"], "", &[]).await;
    let rows = replicas.as_array().expect("array");
    for service in ["user", "auth"] {
        assert!(
            rows.iter()
                .any(|r| r["service"] == service && r["status"] == "SERVING"),
            "{replicas}"
        );
    }
    let down = ctl(
        &s,
        &["health", "--output", "json"],
        "",
        &[("AUTH_SERVICE_URL", "http://127.0.0.1:9")],
    )
    .await;
    assert_eq!(down.code, 1, "{}", down.stderr);
    let rows = down.json();
    let auth = rows
        .as_array()
        .expect("array")
        .iter()
        .find(|r| r["service"] == "auth")
        .cloned()
        .expect("an auth row");
    assert_eq!(auth["address"], "127.0.0.1:9");
    assert_eq!(auth["serving"], false);
    assert!(down.stderr.contains("auth"), "{}", down.stderr);
    s.stop().await;
}

/// The stored password hash of `username`.
async fn stored_hash(s: &Suite, username: &str) -> String {
    let url = s.user_database_url();
    let sql = format!(
        "SELECT password_hash FROM users WHERE username = '{username}' AND deleted_at IS NULL"
    );
    let sql = sqlx::AssertSqlSafe(sql);
    suite_testkit::with_pool!(url, |pool| sqlx::query_scalar(sql)
        .fetch_one(&pool)
        .await
        .expect("hash"))
}

/// Every UserCreated event from now on.
async fn created_events(s: &Suite) -> tonic::Streaming<StreamEventsResponse> {
    let mut client = UserServiceClient::connect(format!("http://{}", s.user))
        .await
        .expect("user service");
    let mut req = tonic::Request::new(StreamEventsRequest {
        types: vec!["suite.user.v1.UserCreated".into()],
        ..StreamEventsRequest::default()
    });
    let token = s.mint("events-test", &["service"]);
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("ascii"),
    );
    client
        .stream_events(req)
        .await
        .expect("stream")
        .into_inner()
}

/// Registers a marker user and reads `feed` up to its UserCreated event:
/// the subjects (user ids) of the events before it. Events come in commit
/// order, so nothing committed before the marker is missed.
async fn created_before_marker(
    s: &Suite,
    feed: &mut tonic::Streaming<StreamEventsResponse>,
    marker: &str,
) -> Vec<String> {
    let marker_id = register(s, marker).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = tokio::time::timeout(left, feed.next())
            .await
            .expect("the marker's event in time")
            .expect("the feed goes on")
            .expect("no error")
            .event
            .expect("an event");
        if event.subject == marker_id {
            return seen;
        }
        seen.push(event.subject);
    }
}

/// The ids of `names`, by LookupUser.
async fn ids_of(s: &Suite, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for name in names {
        let user = ok_json(s, &["users", "find", name], "", &[]).await;
        ids.push(user["id"].as_str().expect("id").to_owned());
    }
    ids
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort_unstable();
    v
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/import-bcrypt.jsonl"
);

async fn bcrypt_users_import_log_in_and_are_upgraded_to_argon2id(backend: Backend) {
    let Some(s) = spawn_suite(backend).await else {
        return;
    };
    let mut feed = created_events(&s).await;
    let report = ok_json(&s, &["users", "import", FIXTURE], "", &[]).await;
    assert_eq!(report["created"], 3, "{report}");
    let names = ["ada.import", "bob.import", "cy.import"];
    let ids = ids_of(&s, &names).await;
    // Each imported user's UserCreated event, once.
    assert_eq!(
        sorted(created_before_marker(&s, &mut feed, "marker1").await),
        sorted(ids.clone())
    );
    assert_eq!(report["failed"], serde_json::json!([]));
    let ada = ok_json(&s, &["users", "find", "ada.import"], "", &[]).await;
    assert_eq!(ada["display_name"], "Ada Imported");
    assert_eq!(ada["create_time"], "2019-05-01T10:00:00Z");
    assert_eq!(ada["roles"], serde_json::json!(["user"]));
    let cy = ok_json(&s, &["users", "find", "cy.import"], "", &[]).await;
    assert_eq!(cy["email"], "cy.import@example.com");
    assert_eq!(cy["create_time"], "2021-12-31T22:59:59Z");

    for (prefix, name) in [
        ("$2a$", "ada.import"),
        ("$2b$", "bob.import"),
        ("$2y$", "cy.import"),
    ] {
        let hash = stored_hash(&s, name).await;
        assert!(hash.starts_with(prefix), "{name}: {hash}");
        let password = format!("imported {name} horse battery");
        let wrong = s
            .request(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(serde_json::json!({"login": name, "password": "not the password"})),
            )
            .await
            .expect("wrong login");
        assert_eq!(wrong.status, 401, "{}", wrong.json);
        assert!(stored_hash(&s, name).await.starts_with(prefix));
        login(&s, name, &password).await;
        let upgraded = stored_hash(&s, name).await;
        assert!(upgraded.starts_with("$argon2id$"), "{name}: {upgraded}");
        // And the new hash verifies the same password.
        login(&s, name, &password).await;
    }

    // Again: everybody is there already.
    let again = ok_json(
        &s,
        &["users", "import", "-"],
        &std::fs::read_to_string(FIXTURE).expect("fixture"),
        &[],
    )
    .await;
    assert_eq!(again["created"], 0, "{again}");
    assert_eq!(
        again["skipped"].as_array().map(Vec::len),
        Some(3),
        "{again}"
    );
    assert_eq!(
        created_before_marker(&s, &mut feed, "marker2").await,
        Vec::<String>::new()
    );
    assert_eq!(ids_of(&s, &names).await, ids, "the same users");
    s.stop().await;
}

suite_testkit::on_both_databases!(suite_testkit::db::backend;
    bcrypt_users_import_log_in_and_are_upgraded_to_argon2id,
    a_malformed_file_reports_every_bad_line_and_imports_only_the_good,
);

/// A file with good lines and every kind of bad one; the numbers of the bad.
fn malformed_file() -> (String, Vec<usize>, Vec<&'static str>) {
    let hash = |i: usize| {
        std::fs::read_to_string(FIXTURE)
            .expect("fixture")
            .lines()
            .nth(i % 3)
            .and_then(|l| serde_json::from_str::<Value>(l).ok())
            .and_then(|v| v["password_hash"].as_str().map(str::to_owned))
            .expect("a fixture hash")
    };
    let good = |name: &str, i: usize| {
        serde_json::json!({"username": name, "email": format!("{name}@example.com"), "password_hash": hash(i)})
            .to_string()
    };
    let lines = [
        good("good.one", 0),                                                        // 1
        "{not json".to_owned(),                                                     // 2
        r#"{"username":"no.hash","email":"no.hash@example.com"}"#.to_owned(),       // 3
        serde_json::json!({"username":"bad.hash","email":"bad.hash@example.com","password_hash":"md5:abc"}).to_string(), // 4
        serde_json::json!({"username":"bad.email","email":"not-an-email","password_hash":hash(1)}).to_string(), // 5
        good("good.two", 1),                                                        // 6
        serde_json::json!({"username":"GOOD.ONE","email":"other@example.com","password_hash":hash(2)}).to_string(), // 7
        serde_json::json!({"username":"late","email":"late@example.com","password_hash":hash(0),"created_at":"last tuesday"}).to_string(), // 8
        String::new(),                                                              // 9: blank, ignored
        serde_json::json!({"username":"x","email":"x@example.com","password_hash":hash(0)}).to_string(), // 10
        serde_json::json!({"username":"extra","email":"extra@example.com","password_hash":hash(0),"role":"admin"}).to_string(), // 11
        good("good.three", 2),                                                      // 12
    ];
    (
        lines.join("\n") + "\n",
        vec![2, 3, 4, 5, 7, 8, 10, 11],
        vec!["good.one", "good.two", "good.three"],
    )
}

async fn a_malformed_file_reports_every_bad_line_and_imports_only_the_good(backend: Backend) {
    let Some(s) = spawn_suite(backend).await else {
        return;
    };
    let (file, bad, good) = malformed_file();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("users.jsonl");
    std::fs::write(&path, &file).expect("write");
    let path = path.to_str().expect("utf-8 path");
    let mut feed = created_events(&s).await;
    for round in 0..2 {
        let run = ctl(
            &s,
            &[
                "users",
                "import",
                path,
                "--output",
                "json",
                "--batch-size",
                "2",
            ],
            "",
            &[],
        )
        .await;
        assert_eq!(
            run.code, 1,
            "a partial import fails: {}\n{}",
            run.stdout, run.stderr
        );
        let report = run.json();
        let failed: Vec<u64> = report["failed"]
            .as_array()
            .expect("failed")
            .iter()
            .filter_map(|f| f["line"].as_u64())
            .collect();
        assert_eq!(
            failed,
            bad.iter().map(|&n| n as u64).collect::<Vec<_>>(),
            "{report}"
        );
        for f in report["failed"].as_array().expect("failed") {
            assert!(!f["reason"].as_str().unwrap_or_default().is_empty(), "{f}");
        }
        let reasons = report["failed"].to_string();
        for field in ["password_hash", "email", "created_at", "line 1", "username"] {
            assert!(reasons.contains(field), "{field}: {reasons}");
        }
        let expected_created = if round == 0 { 3 } else { 0 };
        assert_eq!(
            report["created"], expected_created,
            "round {round}: {report}"
        );
        assert_eq!(
            report["skipped"].as_array().map(Vec::len),
            Some(3 - expected_created as usize)
        );
        let events = created_before_marker(&s, &mut feed, &format!("marker{round}")).await;
        let expected_events = if round == 0 {
            ids_of(&s, &good).await
        } else {
            Vec::new()
        };
        assert_eq!(sorted(events), sorted(expected_events), "round {round}");
    }
    // The text report names the lines too.
    let text = ctl(&s, &["users", "import", path], "", &[]).await;
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains("line 5: email"), "{}", text.stdout);

    let users = ok_json(&s, &["users", "list"], "", &[]).await;
    let mut names: Vec<&str> = users
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .filter(|n| !n.starts_with("marker"))
        .collect();
    names.sort_unstable();
    let mut expected = good.clone();
    expected.sort_unstable();
    assert_eq!(
        names, expected,
        "each good user exactly once, nothing of the bad lines"
    );
    s.stop().await;
}
