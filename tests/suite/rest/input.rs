//! Input the gateway or the services refuse, and the published rules
//! matching what the server takes.

use super::{PASSWORD, register, token};
use crate::helpers::{login, spawn_suite_with};
use serde_json::json;
use suite_testkit::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etag_in_a_patch_body_is_a_precondition_not_a_field_to_change() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    register(&s, "eve").await;
    let at = token(&login(&s, "eve", PASSWORD).await, "accessToken");
    let me = s.get("/api/v1/users/me", Some(&at)).await.expect("me");
    let etag = me.json["etag"].as_str().expect("etag").to_owned();
    let current = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"displayName": "Eve", "etag": etag})),
        )
        .await
        .expect("patch");
    assert_eq!(current.status, 200, "{}", current.json);
    assert_eq!(current.json["displayName"], "Eve");
    let stale = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"displayName": "Mallory", "etag": etag})),
        )
        .await
        .expect("patch");
    assert_eq!(stale.status, 409, "{}", stale.json);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_names_with_invisible_or_direction_changing_characters_are_refused() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    register(&s, "fay").await;
    let at = token(&login(&s, "fay", PASSWORD).await, "accessToken");
    let posing = s
        .request(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some(json!({"displayName": "admin\u{202e}\u{200b}"})),
        )
        .await
        .expect("patch");
    assert_eq!(posing.status, 400, "{}", posing.json);
    assert!(
        posing.json.to_string().contains("displayName"),
        "{}",
        posing.json
    );
    let created = s
        .request(
            "POST",
            "/api/v1/users",
            None,
            Some(json!({"username": "gus", "email": "gus@example.com", "password": PASSWORD, "displayName": "a\u{2066}b"})),
        )
        .await
        .expect("register");
    assert_eq!(created.status, 400, "{}", created.json);
    assert!(
        created.json.to_string().contains("displayName"),
        "{}",
        created.json
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_name_longer_than_any_email_is_refused_before_it_is_counted() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    let long = "x".repeat(60_000);
    let r = s
        .request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": long, "password": "12345"})),
        )
        .await
        .expect("login");
    assert_eq!(r.status, 400, "{}", r.json);
    assert!(r.json.to_string().contains("login"), "{}", r.json);
    // A 254-character name is looked at (and is simply wrong).
    let longest = format!("{}@example.com", "y".repeat(254 - 12));
    let r = s
        .request(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"login": longest, "password": "12345678"})),
        )
        .await
        .expect("login");
    assert_eq!(r.status, 401, "{}", r.json);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_smuggles_a_sibling_field_past_the_body_field_is_refused() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |_| {}).await else {
        return;
    };
    register(&s, "hal").await;
    let at = token(&login(&s, "hal", PASSWORD).await, "accessToken");
    let r = s
        .raw(
            "PATCH",
            "/api/v1/users/me",
            Some(&at),
            Some((
                "application/json",
                r#"{"displayName":"inj3"},"updateMask":"displayName""#.to_owned(),
            )),
        )
        .await
        .expect("patch");
    assert_eq!(r.status, 400, "{}", r.json);
    let me = s.get("/api/v1/users/me", Some(&at)).await.expect("me");
    assert!(me.json.get("displayName").is_none(), "{}", me.json);
    s.stop().await;
}

/// The document and the server agree on usernames: the pattern the served
/// OpenAPI document gives is checked against the server with generated
/// names (any case, look-alikes that fold to ASCII, spaces around, lengths
/// about the bounds): a name is taken (stored in lower case) exactly when
/// the pattern matches it, and refused with 400 naming the field otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_username_pattern_is_exactly_what_the_server_takes() {
    let Some(s) = spawn_suite_with(Backend::Sqlite, |c| {
        c.rate_limit_per_second = 10_000;
        c.rate_limit_burst = 10_000;
    })
    .await
    else {
        return;
    };
    let doc = s.get("/api/openapi.json", None).await.expect("document");
    let pattern = doc.json["components"]["schemas"]["suite.user.v1.CreateUserRequest"]
        ["properties"]["username"]["pattern"]
        .as_str()
        .expect("the username's pattern in the document")
        .to_owned();
    let rule = regex::Regex::new(&pattern).expect("a pattern regex understands");
    register(&s, "fuzzer").await;
    let t = login(&s, "fuzzer", PASSWORD).await;
    let at = token(&t, "accessToken");

    // A fixed seed: the same names every run.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const ALPHABET: &[char] = &[
        'a', 'z', 'A', 'Z', 'q', 'Q', '0', '9', '_', '.', '-', ' ', '\t', '!', '@',
        '\u{212A}', // KELVIN SIGN, which Unicode folds to `k`
        '\u{0130}', // I WITH DOT ABOVE
        '\u{FF21}', // FULLWIDTH A
        '\u{200B}', // ZERO WIDTH SPACE
        'é', 'ß',
    ];
    let mut names: Vec<String> = vec![
        "AAA".into(),
        "aaa".into(),
        " abc".into(),
        "abc ".into(),
        "\u{212A}ate".into(),
        "ab".into(),
        "A".repeat(32),
        "a".repeat(33),
    ];
    for _ in 0..300 {
        let len = 1 + (next() % 36) as usize;
        // Mostly allowed characters, so that both answers are common.
        let name: String = (0..len)
            .map(|_| {
                let r = next();
                if r % 16 == 0 {
                    ALPHABET[(r >> 8) as usize % ALPHABET.len()]
                } else {
                    ALPHABET[(r >> 8) as usize % 11]
                }
            })
            .collect();
        names.push(name);
    }
    let (mut taken, mut refused) = (0, 0);
    for name in &names {
        let r = s
            .request(
                "PATCH",
                "/api/v1/users/me",
                Some(&at),
                Some(json!({ "username": name })),
            )
            .await
            .expect("patch");
        if rule.is_match(name) {
            // Another name of this run, in another case, may hold it.
            if r.status == 409 {
                continue;
            }
            assert_eq!(r.status, 200, "{name:?} matches {pattern}: {}", r.json);
            assert_eq!(
                r.json["username"],
                json!(name.to_ascii_lowercase()),
                "{name:?}"
            );
            taken += 1;
        } else {
            assert_eq!(
                r.status, 400,
                "{name:?} does not match {pattern}: {}",
                r.json
            );
            assert!(
                r.json.to_string().contains("username"),
                "{name:?}: the field is named: {}",
                r.json
            );
            refused += 1;
        }
    }
    assert!(
        taken > 30 && refused > 30,
        "taken {taken}, refused {refused}"
    );
    s.stop().await;
}
