//! Personal access tokens through the launched suite, as a script uses them:
//! created with a sign-in's token, sent as `Authorization: Bearer
//! suitepat_…` to the gateway and straight to a service over gRPC, acting
//! with their scopes only; listed without their secret; and refused once
//! revoked, expired, or their owner deleted or changed. The attacks each
//! refused: a wrong checksum (no exchange at all), an unknown token and a
//! wrong secret alike, a token beyond its scopes, a token minting tokens,
//! a token as a refresh token or at the token endpoint.

use crate::helpers::{Reply, Suite, login, register_as};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use suite_testkit::sse::PATIENCE;

const PASSWORD: &str = "a long passphrase for tokens";

async fn call(
    s: &Suite,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Reply {
    s.request(method, path, token, body)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Registers `name` and signs them in: their id and first-party token.
async fn user(s: &Suite, name: &str) -> (String, String) {
    let created = register_as(s, name, &format!("{name}@example.com"), PASSWORD).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let id = created.json["id"].as_str().expect("id").to_owned();
    (id, sign_in(s, name).await)
}

/// `name`'s first-party access token.
async fn sign_in(s: &Suite, name: &str) -> String {
    login(s, name, PASSWORD).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned()
}

/// An admin `name`, made with a minted admin token and signed in: their
/// id, their first-party token, and the minted one.
async fn admin(s: &Suite, name: &str) -> (String, String, String) {
    let root = s.mint(&uuid::Uuid::now_v7().to_string(), &["user", "admin"]);
    let body = json!({"username": name, "email": format!("{name}@example.com"), "password": PASSWORD, "roles": ["user", "admin"]});
    let made = call(s, "POST", "/api/v1/users", Some(&root), Some(body)).await;
    assert_eq!(made.status, 201, "{}", made.json);
    let id = made.json["id"].as_str().expect("id").to_owned();
    (id, sign_in(s, name).await, root)
}

/// An RFC 3339 instant `secs` from now.
fn in_secs(secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(secs))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Creates a token with `scopes` for whoever `by`'s token names (or for
/// `for_user`): the answer.
async fn create(
    s: &Suite,
    by: &str,
    scopes: &[&str],
    expire: &str,
    for_user: Option<&str>,
) -> Reply {
    let mut body = json!({"name": "ci deploy", "scopes": scopes, "expireTime": expire});
    if let Some(u) = for_user {
        body["userId"] = json!(u);
    }
    call(s, "POST", "/api/v1/auth/tokens", Some(by), Some(body)).await
}

/// A token's secret and id, created for `by`'s user.
async fn token(s: &Suite, by: &str, scopes: &[&str]) -> (String, String) {
    let r = create(s, by, scopes, &in_secs(30 * 86_400), None).await;
    assert_eq!(r.status, 201, "{}", r.json);
    (
        r.json["secret"].as_str().expect("secret").to_owned(),
        r.json["token"]["id"].as_str().expect("id").to_owned(),
    )
}

/// Waits (within a deadline) until `GET path` with `token` answers `status`.
async fn until_status(s: &Suite, path: &str, token: &str, status: u16, what: &str) -> Reply {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = call(s, "GET", path, Some(token), None).await;
        if r.status == status {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still {} {}",
            r.status,
            r.json
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many tokens a list holds (an empty one is `{}`: JSON omits an
/// empty repeated field).
fn count(list: &Reply) -> usize {
    assert_eq!(list.status, 200, "{}", list.json);
    list.json["tokens"].as_array().map_or(0, Vec::len)
}

/// The auth service's count of exchanges with `outcome` (the one process's
/// registry, served on the gateway's admin port).
async fn exchanges(s: &Suite, outcome: &str) -> u64 {
    let (_, text) = s.admin_get("/metrics").await.expect("metrics");
    let wanted =
        format!("suite_auth_personal_access_token_exchanges_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&wanted))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

async fn a_token_acts_with_its_scopes_only(s: Suite) {
    let (alice, signed_in) = user(&s, "alice").await;
    let created = create(&s, &signed_in, &["user:read"], &in_secs(7 * 86_400), None).await;
    assert_eq!(created.status, 201, "{}", created.json);
    let secret = created.json["secret"].as_str().expect("secret").to_owned();
    assert!(
        secret.starts_with("suitepat_") && secret.len() == 47,
        "{secret}"
    );
    assert!(suite_tokens::pat::check(&secret));
    let listed = &created.json["token"];
    let id = listed["id"].as_str().expect("id");
    assert_eq!(listed["userId"], alice);
    assert_eq!(listed["scopes"], json!(["user:read"]));
    assert_eq!(listed["prefix"], secret[..13]);
    let location = created
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok());
    assert_eq!(location, Some(format!("/api/v1/auth/tokens/{id}").as_str()));

    // It reads...
    let me = call(
        &s,
        "GET",
        &format!("/api/v1/users/{alice}"),
        Some(&secret),
        None,
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.json);
    assert_eq!(me.json["username"], "alice");
    // ...and writes nothing: a 403 naming the scope it lacks.
    let patch = call(
        &s,
        "PATCH",
        &format!("/api/v1/users/{alice}"),
        Some(&secret),
        Some(json!({"displayName": "Mallory"})),
    )
    .await;
    assert_eq!(patch.status, 403, "{}", patch.json);
    assert!(
        patch.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`user:write`")),
        "{}",
        patch.json
    );
    let challenge = patch
        .headers
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok());
    assert_eq!(
        challenge,
        Some(r#"Bearer error="insufficient_scope", scope="user:write""#)
    );
    let unchanged = call(
        &s,
        "GET",
        &format!("/api/v1/users/{alice}"),
        Some(&signed_in),
        None,
    )
    .await;
    assert_ne!(unchanged.json["displayName"], "Mallory");

    // A token mints no tokens, even with every scope it may have.
    let (writer, _) = token(&s, &signed_in, &["user:read", "user:write"]).await;
    let minted = create(&s, &writer, &["user:read"], &in_secs(86_400), None).await;
    assert_eq!(minted.status, 403, "{}", minted.json);

    // Listed (with a sign-in's token or a reading one): names, prefixes,
    // never a secret.
    for by in [&signed_in, &secret] {
        let list = call(&s, "GET", "/api/v1/auth/tokens", Some(by), None).await;
        assert_eq!(list.status, 200, "{}", list.json);
        let tokens = list.json["tokens"].as_array().expect("tokens");
        assert_eq!(tokens.len(), 2, "{}", list.json);
        assert!(
            !list.json.to_string().contains(&secret[13..]),
            "a secret listed"
        );
        assert!(
            !list.json.to_string().contains(&writer[13..]),
            "a secret listed"
        );
    }
    // Its use is recorded (at most once a minute: no write per request).
    let list = call(&s, "GET", "/api/v1/auth/tokens", Some(&signed_in), None).await;
    let used = list.json["tokens"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["id"] == id))
        .expect("listed");
    assert!(used["lastUseTime"].is_string(), "{used}");

    // Straight to the user service over gRPC: the same caller.
    use suite_proto::user::{
        GetUserRequest, UpdateUserRequest, User, user_service_client::UserServiceClient,
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", s.user))
        .expect("uri")
        .connect_lazy();
    let mut users = UserServiceClient::new(channel);
    fn bearer<T>(msg: T, secret: &str) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.metadata_mut().insert(
            "authorization",
            format!("Bearer {secret}").parse().expect("metadata"),
        );
        req
    }
    let got = users
        .get_user(bearer(GetUserRequest { id: alice.clone() }, &secret))
        .await
        .expect("GetUser with the token");
    assert_eq!(
        got.into_inner().user.map(|u| u.username),
        Some("alice".into())
    );
    let update = UpdateUserRequest {
        user: Some(User {
            id: alice.clone(),
            display_name: "Mallory".into(),
            ..User::default()
        }),
        ..UpdateUserRequest::default()
    };
    let refused = users
        .update_user(bearer(update, &secret))
        .await
        .expect_err("a reading token writes nothing");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(
        refused.message().contains("user:write"),
        "{}",
        refused.message()
    );
    s.stop().await;
}

async fn scopes_bound_an_admins_token_and_an_operators_tokens(s: Suite) {
    let (ada_id, ada, _) = admin(&s, "ada").await;
    // Ada is an admin; her reading token is not.
    let (reader, _) = token(&s, &ada, &["user:read"]).await;
    let all = call(&s, "GET", "/api/v1/users", Some(&reader), None).await;
    assert_eq!(all.status, 403, "{}", all.json);
    assert!(
        all.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("`admin`")),
        "{}",
        all.json
    );
    let (admin, _) = token(&s, &ada, &["user:read", "admin"]).await;
    let all = call(&s, "GET", "/api/v1/users", Some(&admin), None).await;
    assert_eq!(all.status, 200, "{}", all.json);

    // A plain user may not ask for `admin`, nor make tokens for others.
    let (bob, bob_token) = user(&s, "bob").await;
    let refused = create(&s, &bob_token, &["admin"], &in_secs(86_400), None).await;
    assert_eq!(refused.status, 400, "{}", refused.json);
    assert_eq!(
        refused.json["errors"][0]["field"], "scopes",
        "{}",
        refused.json
    );
    let others = create(
        &s,
        &bob_token,
        &["user:read"],
        &in_secs(86_400),
        Some(&ada_id),
    )
    .await;
    assert_eq!(others.status, 403, "{}", others.json);
    // Bad input, each named, and nothing made.
    for (body, field) in [
        (json!({"name": "x", "scopes": ["user:read"]}), "expireTime"),
        (
            json!({"name": "x", "scopes": ["user:read"], "expireTime": in_secs(-60)}),
            "expireTime",
        ),
        (
            json!({"name": "x", "scopes": ["user:read"], "expireTime": in_secs(400 * 86_400)}),
            "expireTime",
        ),
        (
            json!({"name": "x", "scopes": [], "expireTime": in_secs(60)}),
            "scopes",
        ),
        (
            json!({"name": "x", "scopes": ["openid"], "expireTime": in_secs(60)}),
            "scopes",
        ),
        (
            json!({"name": "", "scopes": ["user:read"], "expireTime": in_secs(60)}),
            "name",
        ),
    ] {
        let r = call(
            &s,
            "POST",
            "/api/v1/auth/tokens",
            Some(&bob_token),
            Some(body.clone()),
        )
        .await;
        assert_eq!(r.status, 400, "{body}: {}", r.json);
        let named = r.json["errors"].as_array().is_some_and(|e| {
            e.iter().any(|e| {
                e["field"].as_str().is_some_and(|f| {
                    f.eq_ignore_ascii_case(field) || f == "expire_time" && field == "expireTime"
                })
            })
        });
        assert!(named, "{body}: {}", r.json);
    }
    let list = call(&s, "GET", "/api/v1/auth/tokens", Some(&bob_token), None).await;
    assert_eq!(count(&list), 0, "{}", list.json);

    // An admin makes one for Bob, lists and revokes it.
    let (for_bob, _) = {
        let r = create(&s, &ada, &["user:read"], &in_secs(86_400), Some(&bob)).await;
        assert_eq!(r.status, 201, "{}", r.json);
        assert_eq!(r.json["token"]["userId"], bob);
        (
            r.json["secret"].as_str().expect("secret").to_owned(),
            r.json["token"]["id"].as_str().expect("id").to_owned(),
        )
    };
    let me = call(
        &s,
        "GET",
        &format!("/api/v1/users/{bob}"),
        Some(&for_bob),
        None,
    )
    .await;
    assert_eq!(me.status, 200, "{}", me.json);
    let listed = call(
        &s,
        "GET",
        &format!("/api/v1/auth/tokens?userId={bob}"),
        Some(&ada),
        None,
    )
    .await;
    assert_eq!(
        listed.json["tokens"].as_array().map(Vec::len),
        Some(1),
        "{}",
        listed.json
    );
    // Bob may not list Ada's.
    let peek = call(
        &s,
        "GET",
        &format!("/api/v1/auth/tokens?userId={ada_id}"),
        Some(&bob_token),
        None,
    )
    .await;
    assert_eq!(peek.status, 403, "{}", peek.json);
    s.stop().await;
}

async fn revocation_and_owner_changes_refuse_a_token_everywhere(s: Suite) {
    let (carol, signed_in) = user(&s, "carol").await;
    let me = format!("/api/v1/users/{carol}");

    // Revoked by its owner: refused at once at the gateway, and by the
    // services it was exchanged for.
    let (secret, id) = token(&s, &signed_in, &["user:read"]).await;
    until_status(&s, &me, &secret, 200, "a fresh token").await;
    let revoked = call(
        &s,
        "DELETE",
        &format!("/api/v1/auth/tokens/{id}"),
        Some(&signed_in),
        None,
    )
    .await;
    assert_eq!(revoked.status, 204, "{}", revoked.json);
    let refused = until_status(&s, &me, &secret, 401, "a revoked token").await;
    assert!(
        refused.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("revoked")),
        "{}",
        refused.json
    );
    let again = call(
        &s,
        "DELETE",
        &format!("/api/v1/auth/tokens/{id}"),
        Some(&signed_in),
        None,
    )
    .await;
    assert_eq!(again.status, 404, "{}", again.json);
    // Another user's token is not found, exactly as none.
    let (_, dave) = user(&s, "dave").await;
    let (_, daves) = token(&s, &dave, &["user:read"]).await;
    let theirs = call(
        &s,
        "DELETE",
        &format!("/api/v1/auth/tokens/{daves}"),
        Some(&signed_in),
        None,
    )
    .await;
    assert_eq!(theirs.status, 404, "{}", theirs.json);

    // A password change revokes the tokens made before it.
    let (secret, _) = token(&s, &signed_in, &["user:read"]).await;
    until_status(&s, &me, &secret, 200, "a fresh token").await;
    let changed = call(
        &s,
        "POST",
        &format!("{me}:changePassword"),
        Some(&signed_in),
        Some(json!({"currentPassword": PASSWORD, "newPassword": "another long passphrase 2027"})),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.json);
    until_status(
        &s,
        &me,
        &secret,
        401,
        "a token from before the password change",
    )
    .await;
    // Revoked for good, not only until its exchanged token expires.
    let signed_in = login(&s, "carol", "another long passphrase 2027").await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list = call(&s, "GET", "/api/v1/auth/tokens", Some(&signed_in), None).await;
        if count(&list) == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still listed: {}", list.json);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The owner's deletion: the token of a deleted user is refused.
    let (secret, _) = token(&s, &signed_in, &["user:read"]).await;
    until_status(&s, &me, &secret, 200, "a fresh token").await;
    let deleted = call(&s, "DELETE", &me, Some(&signed_in), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.json);
    until_status(
        &s,
        "/api/v1/auth/tokens",
        &secret,
        401,
        "a deleted user's token",
    )
    .await;
    s.stop().await;
}

async fn a_demoted_admins_token_acts_as_an_admin_no_more(s: Suite) {
    let (erin, signed_in, root) = admin(&s, "erin").await;
    let (admin, _) = token(&s, &signed_in, &["user:read", "admin"]).await;
    until_status(&s, "/api/v1/users", &admin, 200, "an admin's token").await;
    let demoted = call(
        &s,
        "PATCH",
        &format!("/api/v1/users/{erin}"),
        Some(&root),
        Some(json!({"roles": ["user"]})),
    )
    .await;
    assert_eq!(demoted.status, 200, "{}", demoted.json);
    let refused = until_status(&s, "/api/v1/users", &admin, 401, "a demoted admin's token").await;
    assert!(
        refused.json["detail"].as_str().is_some(),
        "{}",
        refused.json
    );
    s.stop().await;
}

async fn forged_expired_and_misused_tokens_are_refused(s: Suite) {
    let (frank, signed_in) = user(&s, "frank").await;
    let me = format!("/api/v1/users/{frank}");
    let (secret, _) = token(&s, &signed_in, &["user:read", "user:write"]).await;
    until_status(&s, &me, &secret, 200, "a fresh token").await;

    // A typo fails the checksum: refused without any exchange.
    let before = exchanges(&s, "unknown").await + exchanges(&s, "malformed").await;
    let mut typo = secret.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).expect("ascii");
    let r = call(&s, "GET", &me, Some(&typo), None).await;
    assert_eq!(r.status, 401, "{}", r.json);
    assert_eq!(r.json["detail"], "invalid access token", "{}", r.json);
    let after = exchanges(&s, "unknown").await + exchanges(&s, "malformed").await;
    assert_eq!(before, after, "a wrong checksum reached the auth service");

    // A well-formed token never issued, and one sharing a real token's
    // shown prefix with a wrong secret: the same miss, the same answer.
    let unknown = suite_tokens::pat::generate().expect("random");
    let wrong_secret = suite_tokens::pat::checksummed(&format!(
        "{}{}",
        &secret[..13],
        &suite_tokens::pat::generate().expect("random")[13..41]
    ));
    assert!(suite_tokens::pat::check(&wrong_secret));
    let a = call(&s, "GET", &me, Some(&unknown), None).await;
    let b = call(&s, "GET", &me, Some(&wrong_secret), None).await;
    assert_eq!((a.status, b.status), (401, 401));
    assert_eq!(a.json["detail"], b.json["detail"]);
    assert!(exchanges(&s, "unknown").await >= before + 2);

    // An expired token: refused once its time is up.
    let short = create(&s, &signed_in, &["user:read"], &in_secs(2), None).await;
    assert_eq!(short.status, 201, "{}", short.json);
    let short = short.json["secret"].as_str().expect("secret").to_owned();
    let refused = until_status(&s, &me, &short, 401, "an expired token").await;
    assert!(
        refused.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired")),
        "{}",
        refused.json
    );

    // Not a refresh token, nor a grant at the token endpoint, nor a token
    // of UserInfo.
    let refresh = s.with_refresh_token("/api/v1/auth/refresh", &secret).await;
    assert_eq!(refresh.status, 401, "{}", refresh.json);
    let form = format!("grant_type=refresh_token&refresh_token={secret}&client_id=nobody");
    let grant = s
        .raw(
            "POST",
            "/oauth2/token",
            None,
            Some(("application/x-www-form-urlencoded", form)),
        )
        .await
        .expect("token endpoint");
    assert!(
        matches!(grant.status, 400 | 401),
        "{} {}",
        grant.status,
        grant.json
    );
    let exchange = "grant_type=urn:ietf:params:oauth:grant-type:token-exchange&client_id=nobody&subject_token_type=urn:ietf:params:oauth:token-type:access_token&subject_token=".to_owned() + &secret;
    let grant = s
        .raw(
            "POST",
            "/oauth2/token",
            None,
            Some(("application/x-www-form-urlencoded", exchange)),
        )
        .await
        .expect("token endpoint");
    assert!(
        matches!(grant.status, 400 | 401),
        "{} {}",
        grant.status,
        grant.json
    );
    let info = call(&s, "GET", "/oauth2/userinfo", Some(&secret), None).await;
    assert_eq!(info.status, 401, "{}", info.json);
    // The token works on: none of that touched it.
    until_status(&s, &me, &secret, 200, "the token after the misuses").await;
    s.stop().await;
}

async fn events_tell_creation_and_revocation_without_the_secret(s: Suite) {
    let (gina, signed_in) = user(&s, "gina").await;
    let mut stream =
        crate::sse::Stream::open(&s, "/api/v1/users/me/events", &signed_in, None).await;
    let (secret, id) = token(&s, &signed_in, &["user:read"]).await;
    let revoked = call(
        &s,
        "DELETE",
        &format!("/api/v1/auth/tokens/{id}"),
        Some(&signed_in),
        None,
    )
    .await;
    assert_eq!(revoked.status, 204);
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < 2 {
        assert!(Instant::now() < deadline, "events: {seen:?}");
        let event = stream.next_event(PATIENCE).await;
        let kind = crate::sse::Stream::field(&event, "event").unwrap_or_default();
        let data = crate::sse::Stream::field(&event, "data").unwrap_or_default();
        assert!(!data.contains(&secret[9..]), "a secret in an event: {data}");
        if kind.starts_with("suite.auth.v1.PersonalAccessToken") {
            let data: Value = serde_json::from_str(&data).expect("JSON");
            seen.push((kind, data));
        }
    }
    assert_eq!(seen[0].0, "suite.auth.v1.PersonalAccessTokenCreated");
    let created = serde_json::to_string(&seen[0].1).unwrap_or_default();
    assert!(
        created.contains(&id) && created.contains(&gina) && created.contains("user:read"),
        "{created}"
    );
    assert_eq!(seen[1].0, "suite.auth.v1.PersonalAccessTokenRevoked");
    assert!(
        serde_json::to_string(&seen[1].1)
            .unwrap_or_default()
            .contains(&id)
    );
    // The metrics count them.
    let (_, text) = s.admin_get("/metrics").await.expect("metrics");
    assert!(
        text.contains("suite_auth_personal_access_tokens_total{outcome=\"created\"}"),
        "{text}"
    );
    // And the uses: the requests let in with a token, and its exchanges.
    let (secret, _) = token(&s, &signed_in, &["user:read"]).await;
    until_status(&s, "/api/v1/users/me", &secret, 200, "a fresh token").await;
    let (_, text) = s.admin_get("/metrics").await.expect("metrics");
    let used = text
        .lines()
        .find_map(|l| l.strip_prefix("suite_gateway_personal_access_token_requests_total "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert!(used.is_some_and(|n| n >= 1.0), "{used:?}");
    assert!(exchanges(&s, "valid").await >= 1);
    s.stop().await;
}

async fn a_user_with_a_second_factor_needs_it_lately_to_make_a_token(s: Suite) {
    let (app, _, id, password_only) = crate::factors::user_with_totp(&s, "hana").await;
    let refused = create(&s, &password_only, &["user:read"], &in_secs(86_400), None).await;
    assert_eq!(refused.status, 400, "{}", refused.json);
    assert!(
        refused.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("second factor")),
        "{}",
        refused.json
    );
    // Signed in with the code: allowed.
    let challenge = crate::factors::challenge(&s, "hana").await;
    let done = crate::factors::complete(&s, &challenge, &app.code(1)).await;
    assert_eq!(done.status, 200, "{}", done.json);
    let with_code = done.json["accessToken"].as_str().expect("token").to_owned();
    let made = create(
        &s,
        &with_code,
        &["user:read", "user:write"],
        &in_secs(86_400),
        None,
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.json);
    let secret = made.json["secret"].as_str().expect("secret");
    let factors = call(
        &s,
        "GET",
        &format!("/api/v1/users/{id}/factors"),
        Some(secret),
        None,
    )
    .await;
    assert_eq!(factors.status, 200, "{}", factors.json);
    let factor = factors.json["factors"][0]["id"].as_str().expect("a factor");
    // It carries no sign-in, so no step-up: it removes no factor, although
    // it may write and was made with a second factor.
    let path = format!("/api/v1/users/{id}/factors/{factor}");
    let removal = call(&s, "DELETE", &path, Some(secret), None).await;
    assert_eq!(removal.status, 400, "{}", removal.json);
    let still = call(
        &s,
        "GET",
        &format!("/api/v1/users/{id}/factors"),
        Some(secret),
        None,
    )
    .await;
    assert_eq!(still.json["factors"].as_array().map(Vec::len), Some(1));
    s.stop().await;
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    a_user_with_a_second_factor_needs_it_lately_to_make_a_token,
    a_token_acts_with_its_scopes_only,
    scopes_bound_an_admins_token_and_an_operators_tokens,
    revocation_and_owner_changes_refuse_a_token_everywhere,
    a_demoted_admins_token_acts_as_an_admin_no_more,
    forged_expired_and_misused_tokens_are_refused,
    events_tell_creation_and_revocation_without_the_secret,
);
