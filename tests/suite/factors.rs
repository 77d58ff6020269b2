//! Second factors through the launched suite, as an app with its own UI
//! uses them over REST: a TOTP authenticator enrolled and confirmed, the
//! login that then asks for a code (a challenge, then CompleteLogin),
//! recovery codes, step-up for credential changes, the operator's reset,
//! and the attacks each refused: a replayed code, a used challenge, a code
//! on another user's challenge, a reused recovery code, brute force.

use crate::helpers::{Reply, Suite, login, register_as};
use serde_json::{Value, json};
use totp_rs::TOTP;

const PASSWORD: &str = "correct horse battery";

/// The test's authenticator app: the TOTP of an enrolment's URI.
/// Its codes are of time steps counted from the one it was set up in, never
/// from "now" at each call: a replayed code is the same code whenever the
/// test runs it (a code of the step now, taken twice across a step's end,
/// would be two codes). The service takes a step either side of its own.
pub(crate) struct App {
    totp: TOTP,
    base_step: i64,
}

impl App {
    fn new(totp: TOTP) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Self {
            totp,
            base_step: now / 30,
        }
    }

    /// The code of the step `steps` after the one the app was set up in.
    pub(crate) fn code(&self, steps: i64) -> String {
        self.totp
            .generate(u64::try_from((self.base_step + steps) * 30).unwrap_or(0))
    }
}

async fn call(s: &Suite, method: &str, path: &str, token: Option<&str>, body: Value) -> Reply {
    s.request(method, path, token, Some(body))
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

/// Registers `name` and enrols and confirms a TOTP authenticator for them:
/// the app, the recovery codes, the user's id and the password-only token
/// used to enrol.
pub(crate) async fn user_with_totp(s: &Suite, name: &str) -> (App, Vec<String>, String, String) {
    let created = register_as(s, name, &format!("{name}@example.com"), PASSWORD).await;
    let id = created.json["id"].as_str().expect("id").to_owned();
    let token = login(s, name, PASSWORD).await["accessToken"]
        .as_str()
        .expect("token")
        .to_owned();
    let begun = call(
        s,
        "POST",
        "/api/v1/users/me/factors:enrollTotp",
        Some(&token),
        json!({"name": "phone"}),
    )
    .await;
    assert_eq!(begun.status, 200, "{}", begun.json);
    let uri = begun.json["otpauthUri"].as_str().expect("uri");
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(
        begun.json["qrSvg"].as_str().expect("qr").contains("<svg"),
        "a QR code as SVG"
    );
    assert_eq!(begun.json["factor"]["confirmed"], Value::Null, "not yet");
    let app = App::new(TOTP::from_url_unchecked(uri).expect("an otpauth URI"));
    let factor = begun.json["factor"]["id"].as_str().expect("factor id");
    let path = format!("/api/v1/users/me/factors/{factor}:confirm");

    // A wrong first code confirms nothing and names the field.
    let wrong = call(
        s,
        "POST",
        &path,
        Some(&token),
        json!({"code": wrong_code(&app)}),
    )
    .await;
    assert_eq!(wrong.status, 400, "{}", wrong.json);
    assert_eq!(wrong.json["errors"][0]["field"], "code", "{}", wrong.json);

    let confirmed = call(s, "POST", &path, Some(&token), json!({"code": app.code(0)})).await;
    assert_eq!(confirmed.status, 200, "{}", confirmed.json);
    assert_eq!(confirmed.json["factor"]["confirmed"], true);
    let codes: Vec<String> = confirmed.json["recoveryCodes"]
        .as_array()
        .expect("recovery codes with the first factor")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    (app, codes, id, token)
}

/// A six-digit code that is none of the three the service accepts now.
pub(crate) fn wrong_code(app: &App) -> String {
    // Whichever step it is now (the test may have crossed a step's end).
    let valid: Vec<String> = (-2..=4).map(|k| app.code(k)).collect();
    (0..1000)
        .map(|n| format!("{:06}", (n * 7919) % 1_000_000))
        .find(|c| !valid.contains(c))
        .expect("a wrong code")
}

/// A login's challenge (asserting the password was right and no tokens came).
pub(crate) async fn challenge(s: &Suite, name: &str) -> String {
    let r = call(
        s,
        "POST",
        "/api/v1/auth/login",
        None,
        json!({"login": name, "password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(
        r.json["accessToken"],
        Value::Null,
        "no tokens yet: {}",
        r.json
    );
    assert_eq!(r.json["refreshToken"], Value::Null, "{}", r.json);
    let methods = &r.json["secondFactor"]["methods"];
    assert_eq!(*methods, json!(["totp", "recovery_code"]), "{}", r.json);
    r.json["secondFactor"]["challenge"]
        .as_str()
        .expect("a challenge")
        .to_owned()
}

pub(crate) async fn complete(s: &Suite, challenge: &str, code: &str) -> Reply {
    call(
        s,
        "POST",
        "/api/v1/auth/login:complete",
        None,
        json!({"challenge": challenge, "code": code}),
    )
    .await
}

/// The subject of a mail to `to` about `about`, waited for in the suite's
/// development mailbox (the mailer sends after the change commits).
async fn mailed_subject(s: &Suite, to: &str, about: &str) -> String {
    let mailbox = s.data_dir().join("mail");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let files: Vec<_> = std::fs::read_dir(&mailbox)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        for file in files {
            let eml = std::fs::read_to_string(&file).unwrap_or_default();
            let head = eml.split("\r\n\r\n").next().unwrap_or_default();
            let subject = head
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or_default();
            if head.contains(to) && subject.contains(about) {
                return subject.to_owned();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no mail to {to} about {about} in {}",
            mailbox.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The claims of a JWT (unverified: the services verify; this reads).
pub(crate) fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

async fn a_totp_factor_guards_the_login_and_each_code_works_once(s: Suite) {
    let (app, _, _, _) = user_with_totp(&s, "tina").await;

    // The code that confirmed the factor is spent: replayed, it is refused,
    // and the challenge stays for the right code.
    let c = challenge(&s, "tina").await;
    let replayed = complete(&s, &c, &app.code(0)).await;
    assert_eq!(replayed.status, 401, "{}", replayed.json);

    // The next step's code (one step of skew is allowed) signs in.
    let done = complete(&s, &c, &app.code(1)).await;
    assert_eq!(done.status, 200, "{}", done.json);
    let access = done.json["accessToken"].as_str().expect("access token");
    let claimed = claims(access);
    assert_eq!(claimed["amr"], json!(["pwd", "otp", "mfa"]), "{claimed}");
    assert!(claimed["auth_time"].is_i64(), "{claimed}");
    let me = s.get("/api/v1/users/me", Some(access)).await.expect("me");
    assert_eq!(me.status, 200, "{}", me.json);

    // A challenge works once, whatever the code.
    let again = complete(&s, &c, &app.code(1)).await;
    assert_eq!(again.status, 401, "{}", again.json);

    // An earlier step's code, now older than the last one used, is refused.
    let c2 = challenge(&s, "tina").await;
    let older = complete(&s, &c2, &app.code(0)).await;
    assert_eq!(older.status, 401, "{}", older.json);

    // A challenge that is no challenge, and a missing code, say so.
    let unknown = complete(
        &s,
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        &app.code(1),
    )
    .await;
    assert_eq!(unknown.status, 401, "{}", unknown.json);
    let empty = complete(&s, &c2, "").await;
    assert_eq!(empty.status, 401, "{}", empty.json);

    // A refresh keeps how the session signed in.
    let refreshed = s
        .with_refresh_token(
            "/api/v1/auth/refresh",
            done.json["refreshToken"].as_str().expect("refresh token"),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.json);
    let claimed = claims(refreshed.json["accessToken"].as_str().expect("token"));
    assert_eq!(claimed["amr"], json!(["pwd", "otp", "mfa"]), "{claimed}");
}

async fn an_expired_challenge_is_refused_and_spends_no_code(s: Suite) {
    let (app, _, _, _) = user_with_totp(&s, "edda").await;
    let c = challenge(&s, "edda").await;
    // Its five minutes over (the row's end moved into the past: no test waits).
    let past = chrono::Utc::now() - chrono::Duration::seconds(1);
    let moved = suite_testkit::with_pool!(s.auth_database_url(), |pool| sqlx::query(
        "UPDATE login_challenges SET expires_at = $1"
    )
    .bind(past)
    .execute(&pool)
    .await
    .expect("update")
    .rows_affected());
    assert_eq!(moved, 1);
    let expired = complete(&s, &c, &app.code(1)).await;
    assert_eq!(expired.status, 401, "{}", expired.json);
    assert!(
        expired.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("expired")),
        "{}",
        expired.json
    );
    // The code was not spent on it: a fresh challenge takes it.
    let fresh = challenge(&s, "edda").await;
    let done = complete(&s, &fresh, &app.code(1)).await;
    assert_eq!(done.status, 200, "{}", done.json);
}

async fn a_code_for_another_users_challenge_is_refused(s: Suite) {
    let (tina, _, _, _) = user_with_totp(&s, "tina").await;
    let (_, _, _, _) = user_with_totp(&s, "omar").await;
    // Omar's challenge with Tina's current code: it is not Omar's code.
    let c = challenge(&s, "omar").await;
    let r = complete(&s, &c, &tina.code(1)).await;
    assert_eq!(r.status, 401, "{}", r.json);
}

async fn recovery_codes_work_once_and_are_told_by_mail(s: Suite) {
    let (_, codes, id, _) = user_with_totp(&s, "rita").await;
    let c = challenge(&s, "rita").await;
    // Typed loosely: upper case, spaces for dashes.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let done = complete(&s, &c, &typed).await;
    assert_eq!(done.status, 200, "{}", done.json);
    let access = done.json["accessToken"].as_str().expect("token").to_owned();
    assert_eq!(claims(&access)["amr"], json!(["pwd", "rc", "mfa"]));

    let c = challenge(&s, "rita").await;
    let reused = complete(&s, &c, &codes[0]).await;
    assert_eq!(
        reused.status, 401,
        "a recovery code works once: {}",
        reused.json
    );

    let listed = s
        .get("/api/v1/users/me/factors", Some(&access))
        .await
        .expect("list");
    assert_eq!(listed.status, 200, "{}", listed.json);
    assert_eq!(listed.json["recoveryCodesLeft"], 9, "{}", listed.json);
    assert_eq!(listed.json["factors"][0]["kind"], "totp");
    assert!(
        !listed.json.to_string().contains("secret"),
        "no secret is ever shown again: {}",
        listed.json
    );

    // New codes (with step-up: this token came with a second factor)
    // replace the old ones.
    let fresh = s
        .request(
            "POST",
            "/api/v1/users/me/factors:regenerateRecoveryCodes",
            Some(&access),
            None,
        )
        .await
        .expect("regenerate");
    assert_eq!(fresh.status, 200, "{}", fresh.json);
    let c = challenge(&s, "rita").await;
    let old = complete(&s, &c, &codes[1]).await;
    assert_eq!(old.status, 401, "the old codes are gone: {}", old.json);
    let new = fresh.json["recoveryCodes"][0].as_str().expect("a new code");
    assert_eq!(complete(&s, &c, new).await.status, 200);

    // The user is told of the code's use by mail.
    let notice = mailed_subject(&s, "rita@example.com", "recovery code").await;
    assert!(notice.contains("was used"), "{notice}");
    let _ = id;
}

async fn credential_changes_need_a_recent_second_factor(s: Suite) {
    let (app, _, _, password_only) = user_with_totp(&s, "sam").await;
    let factors = s
        .get("/api/v1/users/me/factors", Some(&password_only))
        .await
        .expect("list");
    let factor = factors.json["factors"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/api/v1/users/me/factors/{factor}");

    // The token from before the factor was signed in with a password only:
    // it cannot remove the factor, change the password, or start another.
    let refused = s
        .request("DELETE", &path, Some(&password_only), None)
        .await
        .expect("delete");
    assert_eq!(refused.status, 400, "{}", refused.json);
    assert!(
        refused.json["detail"]
            .as_str()
            .is_some_and(|d| d.contains("second factor")),
        "{}",
        refused.json
    );
    let password = call(
        &s,
        "POST",
        "/api/v1/users/me:changePassword",
        Some(&password_only),
        json!({"currentPassword": PASSWORD, "newPassword": "velvet otter climbs the lighthouse"}),
    )
    .await;
    assert_eq!(password.status, 400, "{}", password.json);
    let another = call(
        &s,
        "POST",
        "/api/v1/users/me/factors:enrollTotp",
        Some(&password_only),
        json!({}),
    )
    .await;
    assert_eq!(another.status, 400, "{}", another.json);

    // Signed in with the factor, the user may remove it; then the password
    // alone signs in again.
    let c = challenge(&s, "sam").await;
    let done = complete(&s, &c, &app.code(1)).await;
    let stepped_up = done.json["accessToken"].as_str().expect("token").to_owned();
    let removed = s
        .request("DELETE", &path, Some(&stepped_up), None)
        .await
        .expect("delete");
    assert_eq!(removed.status, 204, "{}", removed.json);
    let plain = login(&s, "sam", PASSWORD).await;
    assert!(plain["accessToken"].is_string(), "{plain}");
    assert_eq!(
        claims(plain["accessToken"].as_str().expect("token"))["amr"],
        json!(["pwd"])
    );
    // Its recovery codes went with the last factor.
    let listed = s
        .get("/api/v1/users/me/factors", Some(&stepped_up))
        .await
        .expect("list");
    assert_eq!(
        listed.json["recoveryCodesLeft"],
        Value::Null,
        "{}",
        listed.json
    );
}

async fn wrong_codes_are_throttled_as_wrong_passwords(s: Suite) {
    let (app, _, _, _) = user_with_totp(&s, "bruno").await;
    let wrong = wrong_code(&app);
    // The throttle locks the account and address after a few failures
    // (LOGIN_FREE_ATTEMPTS, 3 by default), as it does for passwords: the
    // next code, or the next password, waits (429). A challenge dies after
    // five wrong codes anyway: new ones are taken.
    let mut locked = None;
    'tries: for _ in 0..4 {
        let login = call(
            &s,
            "POST",
            "/api/v1/auth/login",
            None,
            json!({"login": "bruno", "password": PASSWORD}),
        )
        .await;
        if login.status == 429 {
            locked = Some(login);
            break;
        }
        let c = login.json["secondFactor"]["challenge"]
            .as_str()
            .unwrap_or_else(|| panic!("a challenge: {}", login.json))
            .to_owned();
        for _ in 0..4 {
            let r = complete(&s, &c, &wrong).await;
            if r.status == 429 {
                locked = Some(r);
                break 'tries;
            }
            assert_eq!(r.status, 401, "{}", r.json);
        }
    }
    let locked = locked.expect("wrong codes end in a lock");
    assert!(
        locked.headers.contains_key("retry-after"),
        "{:?}",
        locked.headers
    );
}

async fn an_operator_resets_a_users_lost_factors(s: Suite) {
    let (_, _, id, user_token) = user_with_totp(&s, "lou").await;
    // Not the user's own business: only operators reset.
    let reset_path = format!("/api/v1/users/{id}/factors:reset");
    let own = s
        .request("POST", &reset_path, Some(&user_token), None)
        .await
        .expect("reset");
    assert_eq!(own.status, 403, "{}", own.json);
    let admin = s.mint(&uuid::Uuid::now_v7().to_string(), &["user", "admin"]);
    let reset = s
        .request("POST", &reset_path, Some(&admin), None)
        .await
        .expect("reset");
    assert_eq!(reset.status, 200, "{}", reset.json);
    assert_eq!(reset.json["removed"], 1, "{}", reset.json);
    let plain = login(&s, "lou", PASSWORD).await;
    assert!(
        plain["accessToken"].is_string(),
        "the password alone again: {plain}"
    );
}

suite_testkit::on_both_databases!(crate::helpers::spawn_suite;
    a_totp_factor_guards_the_login_and_each_code_works_once,
    a_code_for_another_users_challenge_is_refused,
    an_expired_challenge_is_refused_and_spends_no_code,
    recovery_codes_work_once_and_are_told_by_mail,
    credential_changes_need_a_recent_second_factor,
    wrong_codes_are_throttled_as_wrong_passwords,
    an_operator_resets_a_users_lost_factors,
);
