//! `suitectl clients …` against the launched suite's ClientService.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suitectl_registers_changes_rotates_and_deletes_oauth_clients() {
    let Some(s) = spawn_suite(Backend::Sqlite).await else {
        return;
    };
    let created = ok_json(
        &s,
        &[
            "clients",
            "create",
            "--name",
            "Billing",
            "--type",
            "confidential",
            "--redirect-uri",
            "https://billing.example/callback",
            "--redirect-uri",
            "http://127.0.0.1/callback",
            "--post-logout-redirect-uri",
            "https://billing.example/bye",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
            "--grant-type",
            "client_credentials",
            "--scope",
            "openid",
            "--scope",
            "user:read",
            "--first-party",
            "--backchannel-logout-uri",
            "https://billing.example/logout",
            "--id-token-alg",
            "ES256",
            "--access-token-ttl",
            "300",
        ],
        "",
        &[],
    )
    .await;
    let id = created["client_id"].as_str().expect("client_id").to_owned();
    let secret = created["client_secret"]
        .as_str()
        .expect("client_secret")
        .to_owned();
    assert!(!id.is_empty() && secret.len() >= 32, "{created}");
    assert_eq!(created["name"], "Billing");
    assert_eq!(created["type"], "confidential");
    assert_eq!(
        created["redirect_uris"],
        serde_json::json!([
            "https://billing.example/callback",
            "http://127.0.0.1/callback"
        ])
    );
    assert_eq!(
        created["scopes"],
        serde_json::json!(["openid", "user:read"])
    );
    assert_eq!(created["first_party"], true);
    assert_eq!(created["id_token_signed_response_alg"], "ES256");
    assert_eq!(created["access_token_ttl_secs"], 300);

    // Read back: the same client, and never its secret.
    let got = ok_json(&s, &["clients", "get", &id], "", &[]).await;
    assert_eq!(got["name"], "Billing");
    assert!(got.get("client_secret").is_none(), "{got}");
    let listed = ok_json(&s, &["clients", "list"], "", &[]).await;
    assert!(
        listed
            .as_array()
            .is_some_and(|l| l.iter().any(|c| c["client_id"] == id.as_str())),
        "{listed}"
    );

    // Only what is given changes.
    let updated = ok_json(
        &s,
        &[
            "clients",
            "update",
            &id,
            "--name",
            "Billing 2",
            "--scope",
            "openid",
            "--first-party=false",
            "--no-post-logout-redirect-uris",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(updated["name"], "Billing 2");
    assert_eq!(updated["post_logout_redirect_uris"], serde_json::json!([]));
    assert_eq!(updated["scopes"], serde_json::json!(["openid"]));
    assert_eq!(updated["first_party"], false);
    assert_eq!(updated["redirect_uris"], created["redirect_uris"]);
    let nothing = ctl(&s, &["clients", "update", &id], "", &[]).await;
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);

    // A new secret, shown once; for people, with the warning.
    let rotated = ok_json(
        &s,
        &[
            "clients",
            "rotate-secret",
            &id,
            "--previous-secret-ttl",
            "0",
        ],
        "",
        &[],
    )
    .await;
    let new_secret = rotated["client_secret"].as_str().expect("new secret");
    assert_ne!(new_secret, secret);
    let text = ctl(&s, &["clients", "rotate-secret", &id], "", &[]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("only time"), "{}", text.stdout);

    // A public client has no secret to show.
    let spa = ctl(
        &s,
        &[
            "clients",
            "create",
            "--name",
            "SPA",
            "--type",
            "public",
            "--redirect-uri",
            "https://spa.example/cb",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(spa.code, 0, "{}", spa.stderr);
    assert!(!spa.stdout.contains("secret"), "{}", spa.stdout);

    // Refused input (plain http beyond loopback) is exit code 1.
    let bad = ctl(
        &s,
        &[
            "clients",
            "create",
            "--name",
            "Bad",
            "--type",
            "public",
            "--redirect-uri",
            "http://x.example/cb",
        ],
        "",
        &[],
    )
    .await;
    assert_eq!(bad.code, 1, "{}\n{}", bad.stdout, bad.stderr);

    // Deleted: gone.
    let deleted = ok_json(&s, &["clients", "delete", &id, "--yes"], "", &[]).await;
    assert_eq!(deleted["deleted"], id.as_str());
    let gone = ctl(&s, &["clients", "get", &id], "", &[]).await;
    assert_eq!(gone.code, 1, "{}", gone.stderr);
    assert!(gone.stderr.contains("NotFound"), "{}", gone.stderr);

    // A user who is not an admin is refused: exit code 3.
    register(&s, "plain").await;
    let as_plain = [
        ("SUITECTL_LOGIN", "plain"),
        ("SUITECTL_PASSWORD", "correct horse battery staple"),
    ];
    let refused = ctl(&s, &["clients", "list"], "", &as_plain).await;
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("PermissionDenied"),
        "{}",
        refused.stderr
    );
    s.stop().await;
}
