//! Mail for accounts, through a real SMTP server of the test's own: the
//! verification link at registration, password reset, the change of address
//! and its undoing, the notices, the bounds, and mail that waits for a relay
//! that is down or refuses for a while, arriving once.

use crate::helpers::*;
use std::time::Duration;
use suite_proto::user::{
    ChangePasswordRequest, ConfirmEmailRequest, CreateUserRequest, RequestPasswordResetRequest,
    ResetPasswordRequest, RevertEmailChangeRequest, SendEmailVerificationRequest, User,
    VerifyCredentialsRequest, verify_credentials_response::Outcome,
};
use suite_testkit::{SmtpSink, db::count_rows, eventually};
use tonic::Code;

const PATIENCE: Duration = Duration::from_secs(20);
const STRONG: &str = "marmalade quarry lantern 77";

/// A user service whose mail goes to a sink of its own.
async fn spawn_with_sink(
    backend: Backend,
    tweak: impl FnOnce(&mut suite_user::Config),
) -> Option<(TestApp, SmtpSink)> {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(backend, |c| {
        c.mail.smtp_url = Some(suite_user::mail::config::SmtpUrl(url));
        c.mail.public_url = "https://id.example.com".into();
        tweak(c);
    })
    .await?;
    Some((app, sink))
}

async fn spawn(backend: Backend) -> Option<(TestApp, SmtpSink)> {
    spawn_with_sink(backend, |_| {}).await
}

/// Waits for a mail to `to` whose subject has `subject`.
async fn mail_about(sink: &SmtpSink, to: &str, subject: &str) {
    eventually(
        &format!("a mail to {to} about {subject:?}"),
        PATIENCE,
        async || {
            sink.to(to)
                .iter()
                .any(|m| m.header("Subject").is_some_and(|s| s.contains(subject)))
        },
    )
    .await;
}

/// The token of the link to `path` in the last mail to `to` whose subject has `subject`.
async fn link_token(sink: &SmtpSink, to: &str, subject: &str, path: &str) -> String {
    mail_about(sink, to, subject).await;
    let mail = sink
        .to(to)
        .into_iter()
        .rev()
        .find(|m| m.header("Subject").is_some_and(|s| s.contains(subject)))
        .expect("the mail");
    let link = mail
        .link(path)
        .unwrap_or_else(|| panic!("a link to {path} in {}", mail.text()));
    assert!(link.starts_with("https://id.example.com"), "{link}");
    link.split_once("token=").expect("a token").1.to_owned()
}

fn subjects(sink: &SmtpSink, to: &str) -> Vec<String> {
    sink.to(to)
        .iter()
        .filter_map(|m| m.header("Subject"))
        .collect()
}

async fn confirm(app: &TestApp, token: &str) -> Result<String, tonic::Status> {
    app.client
        .clone()
        .confirm_email(ConfirmEmailRequest {
            token: token.into(),
        })
        .await
        .map(|r| r.into_inner().email)
}

async fn check(app: &TestApp, login: &str, password: &str, agent: &str) -> Outcome {
    let req = VerifyCredentialsRequest {
        login: login.into(),
        password: password.into(),
        client_address: "192.0.2.7".into(),
        user_agent: agent.into(),
    };
    app.client
        .clone()
        .verify_credentials(authed(req, &app.service_token()))
        .await
        .expect("a check")
        .into_inner()
        .outcome()
}

fn field_of(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

async fn registration_mails_a_link_that_verifies_once((app, sink): (TestApp, SmtpSink)) {
    let user = app.create_user("alice").await;
    assert!(!user.email_verified);
    let token = link_token(
        &sink,
        "alice@example.com",
        "Confirm your email",
        "/account/verify-email",
    )
    .await;
    let mail = &sink.to("alice@example.com")[0];
    assert!(mail.header("Message-ID").is_some_and(|id| id.contains('@')));
    assert!(mail.data.contains("text/html"), "an HTML part too");
    let me = app.token_for(&user);
    assert!(
        !app.get(&me, &user.id).await.expect("get").email_verified,
        "mailing verified nothing"
    );

    assert_eq!(
        confirm(&app, &token).await.expect("confirmed"),
        "alice@example.com"
    );
    assert!(app.get(&me, &user.id).await.expect("get").email_verified);
    let again = confirm(&app, &token).await.expect_err("a used link");
    assert_eq!(again.code(), Code::NotFound, "{again:?}");
    // Tampered, malformed: refused alike.
    let mut tampered = token.clone();
    tampered.replace_range(0..1, if token.starts_with('A') { "B" } else { "A" });
    assert_eq!(
        confirm(&app, &tampered).await.expect_err("tampered").code(),
        Code::NotFound
    );
    assert_eq!(
        confirm(&app, "x\r\nBcc: a@b")
            .await
            .expect_err("bad")
            .code(),
        Code::InvalidArgument
    );

    // Verified already: nothing more to send.
    let resend = app
        .client
        .clone()
        .send_email_verification(authed(
            SendEmailVerificationRequest { id: "me".into() },
            &me,
        ))
        .await
        .expect_err("verified already");
    assert_eq!(resend.code(), Code::FailedPrecondition);
}

async fn a_password_reset_works_once_and_ends_the_old_password((app, sink): (TestApp, SmtpSink)) {
    let user = app.create_user("bob").await;
    mail_about(&sink, "bob@example.com", "Confirm your email").await;
    let before = sink.to("bob@example.com").len();
    app.client
        .clone()
        .request_password_reset(RequestPasswordResetRequest {
            login: "BOB".into(),
        })
        .await
        .expect("asked");
    // Nobody's address: the same answer, and no mail.
    app.client
        .clone()
        .request_password_reset(RequestPasswordResetRequest {
            login: "nobody@example.com".into(),
        })
        .await
        .expect("the same answer");
    let token = link_token(
        &sink,
        "bob@example.com",
        "Reset your",
        "/account/reset-password",
    )
    .await;
    assert_eq!(sink.to("bob@example.com").len(), before + 1);
    assert!(sink.to("nobody@example.com").is_empty());

    // A verification link is not a reset link.
    let verify = link_token(
        &sink,
        "bob@example.com",
        "Confirm your email",
        "/account/verify-email",
    )
    .await;
    let reset = |token: String, password: &str| {
        let mut client = app.client.clone();
        let req = ResetPasswordRequest {
            token,
            new_password: password.into(),
        };
        async move { client.reset_password(req).await }
    };
    let wrong_kind = reset(verify, STRONG).await.expect_err("not a reset link");
    assert_eq!(wrong_kind.code(), Code::NotFound, "{wrong_kind:?}");
    // A weak password is refused and the link still works.
    let weak = reset(token.clone(), "password").await.expect_err("weak");
    assert_eq!(field_of(&weak), ["new_password"]);
    assert_eq!(check(&app, "bob", PASSWORD, "").await, Outcome::Valid);

    let done = reset(token.clone(), STRONG)
        .await
        .expect("reset")
        .into_inner();
    assert_eq!(done.user_id, user.id);
    assert_eq!(check(&app, "bob", PASSWORD, "").await, Outcome::Invalid);
    assert_eq!(check(&app, "bob", STRONG, "").await, Outcome::Valid);
    let replay = reset(token, "another pass phrase 19")
        .await
        .expect_err("used");
    assert_eq!(replay.code(), Code::NotFound, "{replay:?}");
    // Told, and the address is proven by the link.
    mail_about(&sink, "bob@example.com", "password was changed").await;
    assert!(
        app.get(&app.token_for(&user), &user.id)
            .await
            .expect("get")
            .email_verified
    );
}

async fn a_reset_link_dies_when_the_password_changes_otherwise((app, sink): (TestApp, SmtpSink)) {
    let user = app.create_user("carol").await;
    app.client
        .clone()
        .request_password_reset(RequestPasswordResetRequest {
            login: "carol@example.com".into(),
        })
        .await
        .expect("asked");
    let token = link_token(
        &sink,
        "carol@example.com",
        "Reset your",
        "/account/reset-password",
    )
    .await;
    let change = ChangePasswordRequest {
        id: "me".into(),
        current_password: PASSWORD.into(),
        new_password: STRONG.into(),
    };
    app.client
        .clone()
        .change_password(authed(change, &app.token_for(&user)))
        .await
        .expect("changed");
    let late = app
        .client
        .clone()
        .reset_password(ResetPasswordRequest {
            token,
            new_password: "another pass phrase 19".into(),
        })
        .await
        .expect_err("the link died with the old password");
    assert_eq!(late.code(), Code::NotFound, "{late:?}");
    assert_eq!(check(&app, "carol", STRONG, "").await, Outcome::Valid);
}

async fn link_mails_are_bounded_per_account_each_hour((app, sink): (TestApp, SmtpSink)) {
    app.create_user("dave").await;
    for _ in 0..4 {
        app.client
            .clone()
            .request_password_reset(RequestPasswordResetRequest {
                login: "dave".into(),
            })
            .await
            .expect("the same answer, mailed or not");
    }
    eventually("the outbox is empty", PATIENCE, async || {
        count_rows(&app.db.url, "mail_outbox").await == 0
    })
    .await;
    let resets = subjects(&sink, "dave@example.com")
        .iter()
        .filter(|s| s.contains("Reset your"))
        .count();
    assert_eq!(
        resets,
        2,
        "MAIL_LINKS_PER_HOUR=3: the verification mail and two resets use it up: {:?}",
        subjects(&sink, "dave@example.com")
    );
}

async fn an_email_change_waits_for_the_new_address_and_can_be_undone(
    (app, sink): (TestApp, SmtpSink),
) {
    let user = app.create_user("erin").await;
    let me = app.token_for(&user);
    let wanted = User {
        id: user.id.clone(),
        email: "erin.new@example.com".into(),
        ..User::default()
    };
    let answer = app.update(&me, wanted, &["email"]).await.expect("asked");
    assert_eq!(
        answer.email, "erin@example.com",
        "not before the new address confirms"
    );
    assert_eq!(answer.pending_email, "erin.new@example.com");
    let token = link_token(
        &sink,
        "erin.new@example.com",
        "new email address",
        "/account/verify-email",
    )
    .await;
    assert_eq!(
        confirm(&app, &token).await.expect("confirmed"),
        "erin.new@example.com"
    );
    let now = app.get(&me, &user.id).await.expect("get");
    assert_eq!(now.email, "erin.new@example.com");
    assert!(now.email_verified);
    assert!(now.pending_email.is_empty());

    // The old address is told, with the way back.
    let undo = link_token(
        &sink,
        "erin@example.com",
        "email address of your",
        "/account/revert-email",
    )
    .await;
    let reverted = app
        .client
        .clone()
        .revert_email_change(RevertEmailChangeRequest {
            token: undo.clone(),
        })
        .await
        .expect("undone")
        .into_inner();
    assert_eq!(reverted.email, "erin@example.com");
    let status = app
        .client
        .clone()
        .get_user_status(authed(
            suite_proto::user::GetUserStatusRequest {
                user_id: user.id.clone(),
                ..Default::default()
            },
            &app.service_token(),
        ))
        .await
        .expect("status")
        .into_inner();
    assert!(
        status.sessions_valid_after.is_some(),
        "everyone was signed out"
    );
    let twice = app
        .client
        .clone()
        .revert_email_change(RevertEmailChangeRequest { token: undo })
        .await
        .expect_err("once");
    assert_eq!(twice.code(), Code::NotFound, "{twice:?}");
}

async fn header_injection_is_refused_and_mails_nothing((app, sink): (TestApp, SmtpSink)) {
    for (name, email) in [
        ("Mallory\r\nBcc: victim@example.com", "mallory@example.com"),
        ("Mallory", "mallory@example.com\r\nBcc: victim@example.com"),
        ("Mallory", "mallory@example.com>\nBcc: victim@example.com"),
    ] {
        let refused = app
            .client
            .clone()
            .create_user(CreateUserRequest {
                username: "mallory".into(),
                email: email.into(),
                password: PASSWORD.into(),
                display_name: name.into(),
                roles: vec![],
            })
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument);
    }
    assert_eq!(count_rows(&app.db.url, "mail_outbox").await, 0);
    assert!(sink.received().is_empty());
}

async fn sign_in_waits_for_a_verified_address((app, sink): (TestApp, SmtpSink)) {
    app.create_user("frank").await;
    assert_eq!(
        check(&app, "frank", PASSWORD, "").await,
        Outcome::EmailUnverified
    );
    // A wrong password learns nothing about the address.
    assert_eq!(
        check(&app, "frank", "wrong horse battery", "").await,
        Outcome::Invalid
    );
    eventually("a second verification mail", PATIENCE, async || {
        subjects(&sink, "frank@example.com").len() >= 2
    })
    .await;
    let token = link_token(
        &sink,
        "frank@example.com",
        "Confirm your email",
        "/account/verify-email",
    )
    .await;
    confirm(&app, &token).await.expect("confirmed");
    assert_eq!(check(&app, "frank", PASSWORD, "").await, Outcome::Valid);
}

async fn a_sign_in_from_a_new_client_is_told((app, sink): (TestApp, SmtpSink)) {
    app.create_user("gina").await;
    assert_eq!(
        check(&app, "gina", PASSWORD, "Firefox/140").await,
        Outcome::Valid
    );
    assert_eq!(
        check(&app, "gina", PASSWORD, "Firefox/140").await,
        Outcome::Valid
    );
    assert_eq!(
        check(&app, "gina", PASSWORD, "curl/8.5").await,
        Outcome::Valid
    );
    mail_about(&sink, "gina@example.com", "New sign-in").await;
    eventually("the outbox is empty", PATIENCE, async || {
        count_rows(&app.db.url, "mail_outbox").await == 0
    })
    .await;
    let notices: Vec<_> = sink
        .to("gina@example.com")
        .into_iter()
        .filter(|m| {
            m.header("Subject")
                .is_some_and(|s| s.contains("New sign-in"))
        })
        .collect();
    assert_eq!(
        notices.len(),
        1,
        "the first client is not news; the second is, once"
    );
    assert!(notices[0].text().contains("curl/8.5"));
}

async fn mail_waits_for_a_relay_that_is_down_and_arrives_once(
    (app, mut sink): (TestApp, SmtpSink),
) {
    // Refused twice for a while (451), then taken.
    sink.refuse_next(2);
    app.create_user("hana").await;
    link_token(
        &sink,
        "hana@example.com",
        "Confirm your email",
        "/account/verify-email",
    )
    .await;

    // Down: the letters wait in the outbox, tried and put off.
    sink.stop();
    for name in ["ivan", "jane", "kemal"] {
        app.create_user(name).await;
    }
    eventually(
        "the mailer tried while the relay was down",
        PATIENCE,
        async || count_rows(&app.db.url, "mail_outbox WHERE attempts > 0").await == 3,
    )
    .await;
    sink.restart().await;
    eventually(
        "every letter went once the relay was back",
        Duration::from_secs(30),
        async || count_rows(&app.db.url, "mail_outbox").await == 0,
    )
    .await;
    for name in ["hana", "ivan", "jane", "kemal"] {
        assert_eq!(
            sink.to(&format!("{name}@example.com")).len(),
            1,
            "{name}: exactly once"
        );
    }
}

/// Runs `sql` on the database at `url` (the test's hand on the clock).
async fn exec(url: &str, sql: &'static str) {
    suite_testkit::with_pool!(url, |pool| {
        sqlx::query(sql).execute(&pool).await.expect("run");
    });
}

async fn an_expired_link_is_refused_like_a_used_one((app, sink): (TestApp, SmtpSink)) {
    app.create_user("lena").await;
    let verify = link_token(
        &sink,
        "lena@example.com",
        "Confirm your email",
        "/account/verify-email",
    )
    .await;
    app.client
        .clone()
        .request_password_reset(RequestPasswordResetRequest {
            login: "lena".into(),
        })
        .await
        .expect("asked");
    let reset = link_token(
        &sink,
        "lena@example.com",
        "Reset your",
        "/account/reset-password",
    )
    .await;
    // Their time is up (whatever the clock's format on either database).
    exec(
        &app.db.url,
        "UPDATE user_tokens SET expires_at = created_at",
    )
    .await;
    let late = confirm(&app, &verify).await.expect_err("expired");
    assert_eq!(late.code(), Code::NotFound, "{late:?}");
    let late = app
        .client
        .clone()
        .reset_password(ResetPasswordRequest {
            token: reset,
            new_password: STRONG.into(),
        })
        .await
        .expect_err("expired");
    assert_eq!(late.code(), Code::NotFound, "{late:?}");
    assert_eq!(
        check(&app, "lena", PASSWORD, "").await,
        Outcome::Valid,
        "nothing changed"
    );
}

async fn a_locked_account_is_told_once((app, sink): (TestApp, SmtpSink)) {
    app.create_user("mona").await;
    for _ in 0..3 {
        let outcome = check(&app, "mona", "not the password at all", "").await;
        assert!(
            matches!(outcome, Outcome::Invalid | Outcome::Locked),
            "{outcome:?}"
        );
    }
    mail_about(&sink, "mona@example.com", "are paused").await;
    eventually("the outbox is empty", PATIENCE, async || {
        count_rows(&app.db.url, "mail_outbox").await == 0
    })
    .await;
    let notices = subjects(&sink, "mona@example.com")
        .iter()
        .filter(|s| s.contains("are paused"))
        .count();
    assert_eq!(notices, 1, "one notice an hour, however many guesses");
}

async fn spawn_locking(backend: Backend) -> Option<(TestApp, SmtpSink)> {
    spawn_with_sink(backend, |c| {
        // The whole account locks at the second wrong password.
        c.login_free_attempts = 100;
        c.login_account_free_attempts = 1;
    })
    .await
}

async fn spawn_bounded(backend: Backend) -> Option<(TestApp, SmtpSink)> {
    spawn_with_sink(backend, |c| c.mail.links_per_hour = 3).await
}

async fn spawn_requiring_verification(backend: Backend) -> Option<(TestApp, SmtpSink)> {
    spawn_with_sink(backend, |c| c.mail.require_verified_email = true).await
}

suite_testkit::on_both_databases!(mod with_sink; super::spawn;
    registration_mails_a_link_that_verifies_once,
    a_password_reset_works_once_and_ends_the_old_password,
    a_reset_link_dies_when_the_password_changes_otherwise,
    an_email_change_waits_for_the_new_address_and_can_be_undone,
    header_injection_is_refused_and_mails_nothing,
    a_sign_in_from_a_new_client_is_told,
    mail_waits_for_a_relay_that_is_down_and_arrives_once,
    an_expired_link_is_refused_like_a_used_one,
);
suite_testkit::on_both_databases!(mod locking; super::spawn_locking;
    a_locked_account_is_told_once,
);
suite_testkit::on_both_databases!(mod bounded; super::spawn_bounded;
    link_mails_are_bounded_per_account_each_hour,
);
suite_testkit::on_both_databases!(mod requiring_verification; super::spawn_requiring_verification;
    sign_in_waits_for_a_verified_address,
);
