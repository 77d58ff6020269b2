//! The mail settings of the user service (environment variables or flags).

use clap::builder::TypedValueParser as _;
use lettre::message::Mailbox;
use std::{path::PathBuf, time::Duration};

/// `SMTP_URL`, whose `Debug` hides the password.
#[derive(Clone)]
pub struct SmtpUrl(pub String);

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&super::transport::without_password(&self.0))
    }
}

fn smtp_url(raw: &str) -> Result<SmtpUrl, String> {
    let raw = raw.trim();
    if !(raw.starts_with("smtp://") || raw.starts_with("smtps://")) {
        return Err("must be smtp://host:port (plain, or ?tls=required for STARTTLS) or smtps://host:port, with user:password@ if the server wants them".into());
    }
    Ok(SmtpUrl(raw.to_owned()))
}

fn mailbox(raw: &str) -> Result<Mailbox, String> {
    raw.parse::<Mailbox>().map_err(|e| {
        format!("must be an address, optionally with a name (Suite <no-reply@example.com>): {e}")
    })
}

fn base_url(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        && !trimmed.contains(['?', '#', ' ']);
    if !ok {
        return Err("must be the http(s) base URL people reach the gateway at, such as https://id.example.com".into());
    }
    Ok(trimmed.to_owned())
}

#[derive(Debug, Clone, clap::Args)]
pub struct MailArgs {
    /// The SMTP server mail goes through: `smtp://host:port` for a local
    /// relay, `smtps://user:password@host:465`, or
    /// `smtp://user:password@host:587?tls=required` for STARTTLS. Unset:
    /// mail goes to the development mailbox (MAIL_DIR) and its links are logged.
    #[arg(long, env = "SMTP_URL", value_parser = smtp_url)]
    pub smtp_url: Option<SmtpUrl>,

    /// The sender of the suite's mail: an address, optionally with a name.
    #[arg(long, env = "MAIL_FROM", default_value = "Suite <no-reply@localhost>", value_parser = mailbox)]
    pub mail_from: Mailbox,

    /// The development mailbox, without SMTP_URL: one .eml file per mail.
    #[arg(long, env = "MAIL_DIR", default_value = "data/mail")]
    pub mail_dir: PathBuf,

    /// The longest one delivery to the SMTP server may take, in seconds
    /// (connect, dialogue and data together).
    #[arg(long = "mail-send-timeout-secs", env = "MAIL_SEND_TIMEOUT_SECS", value_name = "MAIL_SEND_TIMEOUT_SECS", default_value = "30", value_parser = clap::value_parser!(u64).range(1..=600).map(Duration::from_secs))]
    pub send_timeout: Duration,

    /// A mail the SMTP server keeps refusing for a temporary reason is
    /// given up after this many seconds (kept in the outbox, logged).
    #[arg(long = "mail-give-up-after-secs", env = "MAIL_GIVE_UP_AFTER_SECS", value_name = "MAIL_GIVE_UP_AFTER_SECS", default_value = "259200", value_parser = clap::value_parser!(u64).range(60..=2_592_000).map(Duration::from_secs))]
    pub give_up_after: Duration,

    /// The base URL the links in mail point to (the gateway's pages).
    #[arg(long, env = "PUBLIC_URL", default_value = "http://127.0.0.1:8080", value_parser = base_url)]
    pub public_url: String,

    /// The product's name in mail (as on the sign-in pages).
    #[arg(long, env = "BRANDING_PRODUCT_NAME", default_value = "Suite")]
    pub product_name: String,

    /// Whether registration mails a link that verifies the address.
    #[arg(long, env = "EMAIL_VERIFICATION", default_value_t = true, action = clap::ArgAction::Set)]
    pub email_verification: bool,

    /// Whether sign-in waits until the user's email address is verified (a
    /// sign-in with the right password before then mails a new link).
    #[arg(long, env = "REQUIRE_VERIFIED_EMAIL", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_verified_email: bool,

    /// How long a verification (or new-address) link works, in seconds.
    #[arg(long = "email-verification-ttl-secs", env = "EMAIL_VERIFICATION_TTL_SECS", value_name = "EMAIL_VERIFICATION_TTL_SECS", default_value = "86400", value_parser = clap::value_parser!(u64).range(300..=2_592_000).map(Duration::from_secs))]
    pub verification_ttl: Duration,

    /// How long a password reset link works, in seconds.
    #[arg(long = "password-reset-ttl-secs", env = "PASSWORD_RESET_TTL_SECS", value_name = "PASSWORD_RESET_TTL_SECS", default_value = "900", value_parser = clap::value_parser!(u64).range(60..=86_400).map(Duration::from_secs))]
    pub reset_ttl: Duration,

    /// How long the old address may undo a change of address, in seconds.
    #[arg(long = "email-change-revert-ttl-secs", env = "EMAIL_CHANGE_REVERT_TTL_SECS", value_name = "EMAIL_CHANGE_REVERT_TTL_SECS", default_value = "604800", value_parser = clap::value_parser!(u64).range(3600..=2_592_000).map(Duration::from_secs))]
    pub revert_ttl: Duration,

    /// Link mails (verification, new address, password reset) per hour at
    /// most, per account and per address; more requests are answered the
    /// same but send nothing.
    #[arg(long, env = "MAIL_LINKS_PER_HOUR", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..=1000))]
    pub links_per_hour: i64,

    /// Tell the user by mail when their password changes.
    #[arg(long, env = "MAIL_NOTICE_PASSWORD_CHANGED", default_value_t = true, action = clap::ArgAction::Set)]
    pub notice_password_changed: bool,

    /// Tell the old address when the email address changes (with a link
    /// that undoes the change).
    #[arg(long, env = "MAIL_NOTICE_EMAIL_CHANGED", default_value_t = true, action = clap::ArgAction::Set)]
    pub notice_email_changed: bool,

    /// Tell the user by mail of a sign-in from a browser or app not seen
    /// before (the first sign-in of an account is not told).
    #[arg(long, env = "MAIL_NOTICE_NEW_SIGN_IN", default_value_t = true, action = clap::ArgAction::Set)]
    pub notice_new_sign_in: bool,

    /// Tell the user by mail when wrong passwords lock their account.
    #[arg(long, env = "MAIL_NOTICE_ACCOUNT_LOCKED", default_value_t = true, action = clap::ArgAction::Set)]
    pub notice_account_locked: bool,
}

impl MailArgs {
    /// The transport the settings name.
    pub fn transport(&self) -> Result<super::transport::Transport, String> {
        match &self.smtp_url {
            Some(url) => super::transport::Transport::smtp(&url.0, self.send_timeout),
            None => Ok(super::transport::Transport::mailbox(self.mail_dir.clone())),
        }
    }

    pub fn letters(&self) -> super::letters::Letters {
        super::letters::Letters {
            product: self.product_name.clone(),
            public_url: self.public_url.clone(),
        }
    }
}
