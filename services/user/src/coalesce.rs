//! Identical password checks in flight together share one check: the same
//! login, password and client address sent again while the first is being
//! checked (a client's retries, a script's parallel logins, a storm of
//! right passwords) wait for that check's answer instead of queueing a
//! hash each behind it. Identical guesses are one guess, so sharing changes
//! nothing the throttle counts; an attempt that differs in anything is
//! checked (and counted) on its own.
//!
//! The attempts are told apart by a keyed SHA-256 digest (a random key per
//! process), held only while the first attempt is in flight: no password,
//! nor an unkeyed digest of one, is kept.

use crate::lock_ignoring_poison;
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use tokio::sync::watch;

type Fingerprint = [u8; 32];
type InFlight<T> = Arc<Mutex<HashMap<Fingerprint, watch::Receiver<Option<T>>>>>;

/// The checks in flight, by fingerprint.
pub struct Coalescer<T> {
    key: [u8; 32],
    in_flight: InFlight<T>,
}

/// What an attempt is to do.
pub enum Role<T> {
    /// Check, then [`Lead::finish`] with the answer.
    Lead(Lead<T>),
    /// An identical attempt's answer.
    Shared(T),
}

/// The first of identical attempts: its answer goes to the others. Dropped
/// without one (a failure, or its call cancelled), the others check for
/// themselves.
pub struct Lead<T> {
    fingerprint: Fingerprint,
    in_flight: InFlight<T>,
    answer: watch::Sender<Option<T>>,
}

impl<T: Clone> Coalescer<T> {
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            key,
            in_flight: Arc::default(),
        }
    }

    /// Leads the check of `parts`, or waits for an identical one's answer.
    pub async fn join(&self, parts: &[&[u8]]) -> Role<T> {
        let fingerprint = self.fingerprint(parts);
        loop {
            let mut answer = {
                let mut in_flight = lock_ignoring_poison(&self.in_flight);
                match in_flight.get(&fingerprint) {
                    Some(answer) => answer.clone(),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        in_flight.insert(fingerprint, rx);
                        return Role::Lead(Lead {
                            fingerprint,
                            in_flight: Arc::clone(&self.in_flight),
                            answer: tx,
                        });
                    }
                }
            };
            if let Ok(shared) = answer.wait_for(Option::is_some).await
                && let Some(shared) = shared.clone()
            {
                return Role::Shared(shared);
            }
            // The lead gave up without an answer: check anew (as the lead,
            // unless another attempt took that place first).
        }
    }

    /// Each part length-prefixed, so that no two lists of parts collide.
    fn fingerprint(&self, parts: &[&[u8]]) -> Fingerprint {
        let mut digest = Sha256::new();
        digest.update(self.key);
        for part in parts {
            digest.update((part.len() as u64).to_be_bytes());
            digest.update(part);
        }
        digest.finalize().into()
    }
}

impl<T> Lead<T> {
    /// Gives `answer` to the identical attempts waiting (none: they check
    /// for themselves).
    pub fn finish(self, answer: Option<T>) {
        if answer.is_some() {
            self.answer.send_replace(answer);
        }
    }
}

impl<T> Drop for Lead<T> {
    fn drop(&mut self) {
        // Out of the map before the sender goes, so that an attempt woken by
        // its going finds no stale entry.
        lock_ignoring_poison(&self.in_flight).remove(&self.fingerprint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn identical_attempts_share_the_first_ones_answer() {
        let c = Arc::new(Coalescer::<u32>::new([7; 32]));
        let Role::Lead(lead) = c.join(&[b"ann", b"pw"]).await else {
            panic!("the first leads");
        };
        let follower = tokio::spawn({
            let c = Arc::clone(&c);
            async move { matches!(c.join(&[b"ann", b"pw"]).await, Role::Shared(42)) }
        });
        // Answer once the follower waits (the map's receiver and its own).
        while lead.answer.receiver_count() < 2 {
            tokio::task::yield_now().await;
        }
        // A different password is a check of its own, meanwhile.
        assert!(matches!(c.join(&[b"ann", b"pw2"]).await, Role::Lead(_)));
        lead.finish(Some(42));
        assert!(
            follower.await.expect("task"),
            "the follower shares the answer"
        );
        // Finished: the next identical attempt is checked anew.
        assert!(matches!(c.join(&[b"ann", b"pw"]).await, Role::Lead(_)));
    }

    #[tokio::test]
    async fn a_lead_without_an_answer_lets_the_next_attempt_lead() {
        let c = Arc::new(Coalescer::<u32>::new([1; 32]));
        let Role::Lead(lead) = c.join(&[b"bob", b"pw"]).await else {
            panic!("the first leads");
        };
        let next = tokio::spawn({
            let c = Arc::clone(&c);
            async move { matches!(c.join(&[b"bob", b"pw"]).await, Role::Lead(_)) }
        });
        tokio::task::yield_now().await;
        lead.finish(None);
        assert!(next.await.expect("task"), "the waiting attempt leads");
        assert!(lock_ignoring_poison(&c.in_flight).is_empty());
    }

    #[test]
    fn parts_cannot_be_shifted_into_a_collision() {
        let c = Coalescer::<u32>::new([0; 32]);
        assert_ne!(c.fingerprint(&[b"ab", b"c"]), c.fingerprint(&[b"a", b"bc"]));
    }
}
