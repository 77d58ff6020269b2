//! The letters the service writes: rendered when the change that causes
//! them is made (the outbox holds them as they will be sent), from the two
//! templates in `templates/mail` and the wording here, the one place for
//! the product's name and what each letter says.

use askama::Template;
use uuid::Uuid;

/// What a letter is about (its outbox `kind`, and a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    VerifyEmail,
    ConfirmNewEmail,
    EmailChanged,
    PasswordReset,
    PasswordChanged,
    NewSignIn,
    AccountLocked,
    RecoveryCodeUsed,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ConfirmNewEmail => "confirm_new_email",
            Self::EmailChanged => "email_changed",
            Self::PasswordReset => "password_reset",
            Self::PasswordChanged => "password_changed",
            Self::NewSignIn => "new_sign_in",
            Self::AccountLocked => "account_locked",
            Self::RecoveryCodeUsed => "recovery_code_used",
        }
    }
}

/// A rendered letter, as the outbox stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub id: Uuid,
    pub kind: Kind,
    /// The address it goes to.
    pub to: String,
    /// The name shown with it (the user's display name or username).
    pub to_name: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The addressee: who a letter greets and where it goes.
pub struct Addressee<'a> {
    pub email: &'a str,
    pub name: &'a str,
}

/// What letters say and where their links point.
#[derive(Debug, Clone)]
pub struct Letters {
    /// The product's name, as the sign-in pages show it (BRANDING_PRODUCT_NAME).
    pub product: String,
    /// The public base URL the links point to (PUBLIC_URL), without a trailing slash.
    pub public_url: String,
}

/// A link as a letter shows it.
pub struct Action {
    pub label: String,
    pub url: String,
}

/// The parts of a letter the templates lay out.
pub struct Body {
    pub product: String,
    pub greeting: String,
    pub paragraphs: Vec<String>,
    pub action: Option<Action>,
    pub after: Vec<String>,
    pub footer: String,
}

#[derive(Template)]
#[template(path = "mail/letter.txt")]
struct Text<'a> {
    body: &'a Body,
}

#[derive(Template)]
#[template(path = "mail/letter.html")]
struct Html<'a> {
    subject: &'a str,
    body: &'a Body,
}

/// The pages the links open (the gateway serves them).
pub mod paths {
    pub const VERIFY_EMAIL: &str = "/account/verify-email";
    pub const REVERT_EMAIL: &str = "/account/revert-email";
    pub const RESET_PASSWORD: &str = "/account/reset-password";
    pub const FORGOT_PASSWORD: &str = "/account/forgot-password";
}

impl Letters {
    fn link(&self, path: &str, token: &str) -> String {
        format!("{}{path}?token={token}", self.public_url)
    }

    fn footer(&self) -> String {
        format!(
            "This message was sent by {} because of a change to your account. Do not reply to it.",
            self.product
        )
    }

    fn letter(&self, kind: Kind, to: &Addressee<'_>, subject: String, body: Body) -> Letter {
        // Rendering plain strings into these templates cannot fail; if it
        // ever did, a letter without its HTML part still says everything.
        let text = Text { body: &body }.render().unwrap_or_default();
        let html = Html {
            subject: &subject,
            body: &body,
        }
        .render()
        .unwrap_or_default();
        Letter {
            id: Uuid::now_v7(),
            kind,
            to: to.email.to_owned(),
            to_name: to.name.to_owned(),
            subject,
            text,
            html,
        }
    }

    fn body(&self, to: &Addressee<'_>, paragraphs: Vec<String>) -> Body {
        Body {
            product: self.product.clone(),
            greeting: format!("Hello {},", to.name),
            paragraphs,
            action: None,
            after: Vec::new(),
            footer: self.footer(),
        }
    }

    /// The link that verifies `to`'s address.
    pub fn verify_email(&self, to: &Addressee<'_>, token: &str, valid_for: &str) -> Letter {
        let mut body = self.body(
            to,
            vec![format!(
                "Please confirm that {} is your email address for {}.",
                to.email, self.product
            )],
        );
        body.action = Some(Action {
            label: "Confirm your email address".into(),
            url: self.link(paths::VERIFY_EMAIL, token),
        });
        body.after = vec![format!(
            "The link works once, for {valid_for}. If you did not create an account, you can ignore this message."
        )];
        self.letter(
            Kind::VerifyEmail,
            to,
            format!("Confirm your email address for {}", self.product),
            body,
        )
    }

    /// The link that confirms a new address, sent to that address.
    pub fn confirm_new_email(&self, to: &Addressee<'_>, token: &str, valid_for: &str) -> Letter {
        let mut body = self.body(
            to,
            vec![format!(
                "You asked to use {} as the email address of your {} account. It replaces the old one once you confirm it.",
                to.email, self.product
            )],
        );
        body.action = Some(Action {
            label: "Confirm the new address".into(),
            url: self.link(paths::VERIFY_EMAIL, token),
        });
        body.after = vec![format!(
            "The link works once, for {valid_for}. If you did not ask for this, ignore this message: nothing changes."
        )];
        self.letter(
            Kind::ConfirmNewEmail,
            to,
            format!("Confirm your new email address for {}", self.product),
            body,
        )
    }

    /// The notice to the old address that the address changed, with the
    /// link that undoes it.
    pub fn email_changed(
        &self,
        to: &Addressee<'_>,
        new_email: &str,
        token: &str,
        valid_for: &str,
    ) -> Letter {
        let mut body = self.body(
            to,
            vec![format!(
                "The email address of your {} account was changed from {} to {}.",
                self.product, to.email, new_email
            )],
        );
        body.action = Some(Action {
            label: "This was not me: undo the change".into(),
            url: self.link(paths::REVERT_EMAIL, token),
        });
        body.after = vec![format!(
            "If you made this change, there is nothing to do. If not, the link above gives the account back to this address and signs everyone out of it; it works once, for {valid_for}. Then choose a new password."
        )];
        self.letter(
            Kind::EmailChanged,
            to,
            format!("The email address of your {} account changed", self.product),
            body,
        )
    }

    /// The password reset link.
    pub fn password_reset(&self, to: &Addressee<'_>, token: &str, valid_for: &str) -> Letter {
        let mut body = self.body(
            to,
            vec![format!(
                "Someone (we hope you) asked to reset the password of your {} account.",
                self.product
            )],
        );
        body.action = Some(Action {
            label: "Choose a new password".into(),
            url: self.link(paths::RESET_PASSWORD, token),
        });
        body.after = vec![format!(
            "The link works once, for {valid_for}, and stops working if the password changes in any other way. If you did not ask for this, ignore this message: your password stays as it is."
        )];
        self.letter(
            Kind::PasswordReset,
            to,
            format!("Reset your {} password", self.product),
            body,
        )
    }

    /// The notice that the password changed.
    pub fn password_changed(&self, to: &Addressee<'_>) -> Letter {
        let mut body = self.body(
            to,
            vec![format!(
                "The password of your {} account was changed, and every session that was signed in before is now signed out.",
                self.product
            )],
        );
        body.action = Some(Action {
            label: "This was not me: reset the password".into(),
            url: format!("{}{}", self.public_url, paths::FORGOT_PASSWORD),
        });
        self.letter(
            Kind::PasswordChanged,
            to,
            format!("Your {} password was changed", self.product),
            body,
        )
    }

    /// The notice that a recovery code signed the user in (`left` remain).
    pub fn recovery_code_used(&self, to: &Addressee<'_>, left: i64) -> Letter {
        let mut body = self.body(
            to,
            vec![
                format!(
                    "A recovery code was just used to sign in to your {} account. It no longer works; {left} unused codes are left.",
                    self.product
                ),
                "If you lost your authenticator, sign in and set up a new one, then make new recovery codes.".into(),
            ],
        );
        body.action = Some(Action {
            label: "This was not me: reset the password".into(),
            url: format!("{}{}", self.public_url, paths::FORGOT_PASSWORD),
        });
        self.letter(
            Kind::RecoveryCodeUsed,
            to,
            format!("A recovery code of your {} account was used", self.product),
            body,
        )
    }

    /// The notice of a sign-in from a client not seen before.
    pub fn new_sign_in(&self, to: &Addressee<'_>, client: &str, address: &str) -> Letter {
        let mut paragraphs = vec![format!(
            "Your {} account was just signed in to from a device or browser it was not used with before.",
            self.product
        )];
        if !client.is_empty() {
            paragraphs.push(format!("Browser or app: {client}"));
        }
        if !address.is_empty() {
            paragraphs.push(format!("Network address: {address}"));
        }
        let mut body = self.body(to, paragraphs);
        body.action = Some(Action {
            label: "This was not me: reset the password".into(),
            url: format!("{}{}", self.public_url, paths::FORGOT_PASSWORD),
        });
        body.after = vec!["If this was you, there is nothing to do.".into()];
        self.letter(
            Kind::NewSignIn,
            to,
            format!("New sign-in to your {} account", self.product),
            body,
        )
    }

    /// The notice that wrong passwords locked the account for a while.
    pub fn account_locked(&self, to: &Addressee<'_>, until: &str) -> Letter {
        let mut body = self.body(
            to,
            vec![
                format!(
                    "Too many wrong passwords were tried on your {} account, so sign-ins are paused until {until}.",
                    self.product
                ),
                "If these were not your attempts, someone may be guessing your password: choose a strong one you use nowhere else.".into(),
            ],
        );
        body.action = Some(Action {
            label: "Reset the password".into(),
            url: format!("{}{}", self.public_url, paths::FORGOT_PASSWORD),
        });
        self.letter(
            Kind::AccountLocked,
            to,
            format!("Sign-ins to your {} account are paused", self.product),
            body,
        )
    }
}

/// A lifetime in words ("15 minutes", "24 hours", "7 days").
pub fn lifetime_in_words(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let (n, unit) = if secs.is_multiple_of(86_400) && secs >= 86_400 * 2 {
        (secs / 86_400, "days")
    } else if secs.is_multiple_of(3600) && secs >= 3600 {
        (secs / 3600, if secs == 3600 { "hour" } else { "hours" })
    } else if secs >= 60 {
        (
            secs.div_ceil(60),
            if secs <= 60 { "minute" } else { "minutes" },
        )
    } else {
        (secs, if secs == 1 { "second" } else { "seconds" })
    };
    format!("{n} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters() -> Letters {
        Letters {
            product: "Suite".into(),
            public_url: "https://id.example.com".into(),
        }
    }

    #[test]
    fn a_letter_has_its_link_in_both_parts_and_escapes_html() {
        let to = Addressee {
            email: "ann@example.com",
            name: "Ann <b>&</b>",
        };
        let l = letters().password_reset(&to, "SECRET", "15 minutes");
        let link = "https://id.example.com/account/reset-password?token=SECRET";
        assert!(l.text.contains(link), "{}", l.text);
        assert!(l.text.contains("Hello Ann <b>&</b>,"));
        assert!(l.html.contains(link));
        assert!(
            l.html.contains("Ann &#60;b&#62;&#38;&#60;/b&#62;")
                || l.html.contains("Ann &lt;b&gt;&amp;&lt;/b&gt;"),
            "{}",
            l.html
        );
        assert!(l.subject.contains("Suite"));
        assert_eq!(l.kind, Kind::PasswordReset);
    }

    #[test]
    fn lifetimes_read_as_words() {
        use std::time::Duration;
        assert_eq!(lifetime_in_words(Duration::from_secs(900)), "15 minutes");
        assert_eq!(lifetime_in_words(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(lifetime_in_words(Duration::from_secs(7 * 86_400)), "7 days");
        assert_eq!(lifetime_in_words(Duration::from_secs(3600)), "1 hour");
        assert_eq!(lifetime_in_words(Duration::from_secs(60)), "1 minute");
    }
}
