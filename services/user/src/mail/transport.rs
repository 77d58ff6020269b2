//! Where letters go: an SMTP server (`SMTP_URL`, with lettre over rustls),
//! or, without one, the development mailbox: one `.eml` file per letter
//! under `MAIL_DIR`, its links logged, so that a quick start shows the
//! whole flow with no mail server at all.

use super::queue::QueuedMail;
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart},
};
use std::{path::PathBuf, time::Duration};

/// Why a letter was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another try later: the server is away, busy, or answered 4xx.
    #[error("{0}")]
    Temporary(String),
    /// Never deliverable as it is: a 5xx answer, an address lettre refuses.
    #[error("{0}")]
    Permanent(String),
}

pub enum Transport {
    Smtp {
        smtp: AsyncSmtpTransport<Tokio1Executor>,
        /// Bounds a whole send: lettre's own timeout bounds each read and
        /// write of the connection, but a server that trickles its answers
        /// could hold a send for ever (lettre#1027).
        timeout: Duration,
        /// `SMTP_URL` without its password, for the logs.
        shown: String,
    },
    Mailbox {
        dir: PathBuf,
    },
}

impl Transport {
    /// The SMTP transport `url` describes (`smtp://`, `smtps://`,
    /// `?tls=required` for STARTTLS, credentials in the URL's user info).
    pub fn smtp(url: &str, timeout: Duration) -> Result<Self, String> {
        let smtp = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| e.to_string())?
            .timeout(Some(timeout))
            .build();
        Ok(Self::Smtp {
            smtp,
            timeout,
            shown: without_password(url),
        })
    }

    pub fn mailbox(dir: PathBuf) -> Self {
        Self::Mailbox { dir }
    }

    /// Where letters go, for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            Self::Smtp { shown, .. } => shown.clone(),
            Self::Mailbox { dir } => format!("the development mailbox {}", dir.display()),
        }
    }

    /// Delivers `mail` from `from`.
    pub async fn send(&self, from: &Mailbox, mail: &QueuedMail) -> Result<(), SendError> {
        let message = message(from, mail)?;
        match self {
            Self::Smtp { smtp, timeout, .. } => {
                match tokio::time::timeout(*timeout, smtp.send(message)).await {
                    Err(_) => Err(SendError::Temporary(format!(
                        "the SMTP server took longer than {}s",
                        timeout.as_secs()
                    ))),
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
                    Ok(Err(e)) => Err(SendError::Temporary(e.to_string())),
                }
            }
            Self::Mailbox { dir } => {
                let path = deliver_to_dir(dir, mail, &message.formatted())
                    .await
                    .map_err(|e| SendError::Temporary(format!("{}: {e}", dir.display())))?;
                let links: Vec<&str> = mail
                    .text
                    .lines()
                    .map(str::trim)
                    .filter(|l| l.starts_with("http://") || l.starts_with("https://"))
                    .collect();
                tracing::info!(
                    to = %mail.to,
                    subject = %mail.subject,
                    file = %path.display(),
                    links = ?links,
                    "mail written to the development mailbox"
                );
                Ok(())
            }
        }
    }
}

/// The letter as an RFC 5322 message: plain text and HTML alternatives,
/// its outbox id as the Message-ID (a re-send after a crash carries the
/// same one, so a receiver can tell).
fn message(from: &Mailbox, mail: &QueuedMail) -> Result<Message, SendError> {
    let address = mail
        .to
        .parse()
        .map_err(|e| SendError::Permanent(format!("recipient {:?}: {e}", mail.to)))?;
    // A name with line breaks or other controls is never stored (display
    // names refuse them); dropped here all the same, as the header's last guard.
    let name: String = mail.to_name.chars().filter(|c| !c.is_control()).collect();
    let domain = from.email.domain().to_owned();
    Message::builder()
        .message_id(Some(format!("<{}@{domain}>", mail.id)))
        .from(from.clone())
        .to(Mailbox::new((!name.is_empty()).then_some(name), address))
        .subject(mail.subject.clone())
        .multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            mail.html.clone(),
        ))
        .map_err(|e| SendError::Permanent(format!("building the message: {e}")))
}

/// Writes the message to `dir` atomically (a reader never sees half a
/// letter), named by its time and id: a re-send overwrites, never doubles.
async fn deliver_to_dir(
    dir: &std::path::Path,
    mail: &QueuedMail,
    bytes: &[u8],
) -> std::io::Result<PathBuf> {
    tokio::fs::create_dir_all(dir).await?;
    let name = format!(
        "{}-{}.eml",
        mail.created_at.format("%Y%m%dT%H%M%S%.3fZ"),
        mail.id
    );
    let path = dir.join(&name);
    let partial = dir.join(format!(".{name}.partial"));
    tokio::fs::write(&partial, bytes).await?;
    tokio::fs::rename(&partial, &path).await?;
    Ok(path)
}

/// `url` with any password replaced by `***`.
pub(super) fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            without_password("smtps://me:secret@mail.example.com:465"),
            "smtps://me:***@mail.example.com:465"
        );
        assert_eq!(
            without_password("smtp://127.0.0.1:2525"),
            "smtp://127.0.0.1:2525"
        );
    }
}
