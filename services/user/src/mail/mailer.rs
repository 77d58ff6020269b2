//! The mailer: delivers the mail outbox. Each replica runs one; a letter is
//! claimed before it is sent (a batch at a time, so two replicas never send
//! one at once), deleted once the server took it (the round's together), tried again with a growing pause after a
//! temporary failure, set aside after a permanent one or once it is too old.
//! A crash between the server's acceptance and the delete sends the letter
//! again after the claim's lease, with the same Message-ID.

use super::{
    queue::{MailQueue, QueuedMail},
    transport::{SendError, Transport},
};
use chrono::Utc;
use lettre::message::Mailbox;
use std::{sync::Arc, time::Duration};
use suite_db::Migrated;
use tokio::{sync::Notify, task::JoinSet};

/// Wakes the mailer after a change wrote a letter, so it goes at once.
#[derive(Debug, Clone, Default)]
pub struct MailWake(Arc<Notify>);

impl MailWake {
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

#[derive(Debug, Clone, Copy)]
pub struct MailerSettings {
    /// How often the outbox is looked at when nothing wakes the mailer
    /// (other replicas' letters, and those put off).
    pub poll: Duration,
    /// Letters read (and sent at once) per round.
    pub batch: i64,
    /// The whole of one send.
    pub send_timeout: Duration,
    /// The pause after the first temporary failure, doubled after each.
    pub first_retry: Duration,
    /// The longest pause.
    pub max_retry: Duration,
    /// Letters older than this are not tried again.
    pub give_up_after: Duration,
}

impl MailerSettings {
    pub fn new(send_timeout: Duration, give_up_after: Duration) -> Self {
        Self {
            poll: Duration::from_secs(1),
            batch: 32,
            send_timeout,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(600),
            give_up_after,
        }
    }

    /// The pause after the `attempts`-th attempt failed.
    fn retry_after(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
        self.first_retry
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max_retry)
    }
}

pub struct Mailer {
    queue: Arc<dyn MailQueue>,
    transport: Transport,
    from: Mailbox,
    settings: MailerSettings,
}

impl Mailer {
    pub fn new(
        queue: Arc<dyn MailQueue>,
        transport: Transport,
        from: Mailbox,
        settings: MailerSettings,
    ) -> Self {
        Self {
            queue,
            transport,
            from,
            settings,
        }
    }

    /// Runs the mailer until the task is aborted, once the migrations
    /// have made the outbox.
    pub fn spawn(self, wake: MailWake, mut migrated: Migrated) -> tokio::task::JoinHandle<()> {
        tracing::info!(to = %self.transport.describe(), "mailer started");
        let this = Arc::new(self);
        tokio::spawn(async move {
            migrated.wait().await;
            loop {
                let read = this.clone().round().await;
                if read < usize::try_from(this.settings.batch).unwrap_or(usize::MAX) {
                    tokio::select! {
                        () = wake.0.notified() => {}
                        () = tokio::time::sleep(this.settings.poll) => {}
                    }
                }
            }
        })
    }

    /// Sends what is due; how many letters were claimed.
    async fn round(self: Arc<Self>) -> usize {
        let now = Utc::now();
        // The lease outlasts the sends: nobody else takes them meanwhile.
        let lease = self.settings.send_timeout + Duration::from_secs(30);
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let claimed = match self.queue.claim_due(now, until, self.settings.batch).await {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::warn!(error = %e, "reading the mail outbox failed; will retry");
                return 0;
            }
        };
        let count = claimed.len();
        if count > 0 {
            let mut sends = JoinSet::new();
            for mail in claimed {
                let this = self.clone();
                sends.spawn(async move {
                    let outcome = this.transport.send(&this.from, &mail).await;
                    (mail, outcome)
                });
            }
            let mut sent = Vec::with_capacity(count);
            while let Some(done) = sends.join_next().await {
                let Ok((mail, outcome)) = done else { continue };
                if let Some(id) = self.settle(mail, outcome).await {
                    sent.push(id);
                }
            }
            if !sent.is_empty()
                && let Err(e) = self.queue.sent(&sent).await
            {
                // The leases run out and the letters are tried again: at
                // worst second copies with the same Message-IDs.
                tracing::warn!(error = %e, mails = sent.len(), "recording deliveries failed");
            }
        }
        if let Ok(depth) = self.queue.depth().await {
            crate::metrics::metrics().mail_outbox_depth.set(depth);
        }
        count
    }

    /// Records what one send came to; the letter's id if it was delivered
    /// (deleted with the round's others).
    async fn settle(&self, mail: QueuedMail, outcome: Result<(), SendError>) -> Option<uuid::Uuid> {
        let now = Utc::now();
        let label = match &outcome {
            Ok(()) => "sent",
            Err(SendError::Temporary(_)) => "retried",
            Err(SendError::Permanent(_)) => "failed",
        };
        crate::metrics::count_mail(label);
        let recorded = match outcome {
            Ok(()) => {
                let waited = (now - mail.created_at).to_std().unwrap_or_default();
                crate::metrics::metrics()
                    .mail_delivery_seconds
                    .observe(waited.as_secs_f64());
                tracing::info!(mail.id = %mail.id, mail.kind = %mail.kind, attempts = mail.attempts, "mail sent");
                return Some(mail.id);
            }
            Err(SendError::Temporary(e)) => {
                let age = (now - mail.created_at).to_std().unwrap_or_default();
                if age >= self.settings.give_up_after {
                    tracing::error!(mail.id = %mail.id, mail.kind = %mail.kind, error = %e, "mail given up: the SMTP server refused it for too long");
                    self.queue.failed(mail.id, now, &e).await
                } else {
                    let pause = self.settings.retry_after(mail.attempts);
                    tracing::warn!(mail.id = %mail.id, mail.kind = %mail.kind, error = %e, retry_in_secs = pause.as_secs(), "mail not sent; will retry");
                    let at = now + chrono::Duration::from_std(pause).unwrap_or_default();
                    self.queue.retry_at(mail.id, at, &e).await
                }
            }
            Err(SendError::Permanent(e)) => {
                tracing::error!(mail.id = %mail.id, mail.kind = %mail.kind, error = %e, "mail refused for good; not retried");
                self.queue.failed(mail.id, now, &e).await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and the letter is tried again.
            tracing::warn!(error = %e, mail.id = %mail.id, "recording a mail's failure failed");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_longest() {
        let s = MailerSettings::new(Duration::from_secs(30), Duration::from_secs(3600));
        assert_eq!(s.retry_after(1), Duration::from_secs(1));
        assert_eq!(s.retry_after(2), Duration::from_secs(2));
        assert_eq!(s.retry_after(5), Duration::from_secs(16));
        assert_eq!(s.retry_after(40), Duration::from_secs(600));
    }
}
