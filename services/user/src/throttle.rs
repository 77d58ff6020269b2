//! The password throttle: every password check (a login through the auth
//! service, the current password of ChangePassword) is counted against the
//! account it names, twice: per account and client address, which locks
//! soon, and per account across all addresses, which locks only after many
//! more failures. So a flood from one address locks out that address, not
//! the owner elsewhere, while an attacker with many addresses is still
//! bounded per account. Locks grow with each failure and are bounded
//! (seconds, not days), so guessing slows to a crawl but the owner is never
//! locked out for long.

use crate::{
    error::Error,
    store::{Attempt, Counter, UserStore},
};
use chrono::{DateTime, SubsecRound, Utc};
use sha2::{Digest, Sha256};
use std::{sync::Arc, time::Duration};
use suite_events::{Event, outbox::Wake};
use suite_proto::user::AccountLocked;
use uuid::Uuid;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures from one address allowed before that pair is locked.
    pub free_attempts: i64,
    /// Failures from all addresses allowed before the account is locked.
    pub account_free_attempts: i64,
    /// The longest lock.
    pub max_lock: Duration,
    /// Failures older than this are forgotten.
    pub forget_after: Duration,
}

impl ThrottlePolicy {
    /// The lock after the `failures`-th failure of a counter allowing `free`:
    /// none for the free attempts, then 1 s, 2 s, 4 s, … up to `max_lock`.
    pub fn lock_after(&self, free: i64, failures: i64) -> Duration {
        let over = failures - free;
        if over <= 0 {
            return Duration::ZERO;
        }
        let secs = 1u64
            .checked_shl((over - 1).min(32) as u32)
            .unwrap_or(u64::MAX);
        Duration::from_secs(secs).min(self.max_lock)
    }
}

/// Whom a password check is about: a user, or, for a login that names
/// nobody, that login (counted all the same, so the throttle reveals
/// nothing about which accounts exist).
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    User(Uuid),
    Unknown(&'a str),
}

/// The two counters of a check: (account and address, account).
pub struct Keys {
    pub pair: String,
    pub account: String,
}

impl Keys {
    /// Fixed-size digests, whatever was sent: the username and the email of
    /// one user share their counters, because both resolve to the user id.
    pub fn new(account: Account<'_>, address: &str) -> Self {
        let account = match account {
            Account::User(id) => format!("user:{id}"),
            Account::Unknown(login) => format!("login:{}", suite_proto::canonical_login(login)),
        };
        Self {
            pair: digest(&format!("{account}\n{address}")),
            account: digest(&account),
        }
    }
}

/// The throttle over the store's counters.
pub struct Throttle {
    store: Arc<dyn UserStore>,
    policy: ThrottlePolicy,
    /// The outbox relay, woken after an account lock's event is written.
    events: Wake,
}

/// A check that may go ahead; give it back with [`Throttle::release`] if
/// the password was right.
#[must_use]
pub struct Reservation {
    keys: Keys,
    /// Failures from this account and address, this one included.
    pub failures: i64,
    /// The user counted against, if the login names one.
    user: Option<Uuid>,
    /// Each counter's lock, if this failure imposes one (pair, account).
    locks: Vec<Option<DateTime<Utc>>>,
}

impl Throttle {
    pub fn new(store: Arc<dyn UserStore>, policy: ThrottlePolicy, events: Wake) -> Self {
        Self {
            store,
            policy,
            events,
        }
    }

    /// Counts a password check before it is made: `Throttled` (and nothing
    /// counted) while either counter of `account` and `address` is locked.
    pub async fn reserve(&self, account: Account<'_>, address: &str) -> Result<Reservation, Error> {
        let keys = Keys::new(account, address);
        let p = self.policy;
        let pair_lock = |n| p.lock_after(p.free_attempts, n);
        let account_lock = |n| p.lock_after(p.account_free_attempts, n);
        let counters = [
            Counter {
                key: &keys.pair,
                lock: &pair_lock,
            },
            Counter {
                key: &keys.account,
                lock: &account_lock,
            },
        ];
        let now = now();
        let forget_before = now - chrono::Duration::from_std(p.forget_after).unwrap_or_default();
        match self
            .store
            .reserve_attempt(&counters, now, forget_before)
            .await?
        {
            Attempt::Locked(until) => {
                crate::metrics::count_password_check("locked");
                Err(Error::Throttled((until - now).to_std().unwrap_or_default()))
            }
            Attempt::Counted(counters) => Ok(Reservation {
                keys,
                failures: counters.first().map_or(0, |f| f.count),
                user: match account {
                    Account::User(id) => Some(id),
                    Account::Unknown(_) => None,
                },
                locks: counters.iter().map(|f| f.locked_until).collect(),
            }),
        }
    }

    /// The password was right: its address starts afresh, and the account
    /// gets this check back.
    pub async fn release(&self, r: Reservation) -> Result<(), Error> {
        crate::metrics::count_password_check("right");
        let free = self.policy.account_free_attempts;
        Ok(self
            .store
            .release_attempt(&r.keys.pair, &r.keys.account, free)
            .await?)
    }

    /// The password was wrong: the reservation stands as the failure.
    pub async fn fail(&self, r: Reservation) {
        crate::metrics::count_password_check("wrong");
        tracing::info!(failures = r.failures, "wrong password");
        // A failure that locks a user's logins is an event (nobody's
        // logins, an unknown name's, are not).
        let (Some(user), Some(until)) = (r.user, r.locks.iter().flatten().max()) else {
            return;
        };
        let locked = AccountLocked {
            user_id: user.to_string(),
            locked_until: Some(prost_types::Timestamp {
                seconds: until.timestamp(),
                nanos: i32::try_from(until.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            whole_account: r.locks.get(1).copied().flatten().is_some(),
        };
        let event = Event::new(&locked, user);
        match self.store.append_events(std::slice::from_ref(&event)).await {
            Ok(()) => self.events.wake(),
            // The lock holds regardless; only its announcement is lost.
            Err(e) => tracing::warn!(error = %e, "recording an account lock's event failed"),
        }
    }

    /// Deletes counters that can never matter again.
    pub async fn prune(&self) -> Result<u64, Error> {
        let now = now();
        let before = now - chrono::Duration::from_std(self.policy.forget_after).unwrap_or_default();
        Ok(self.store.prune_failures(before, now).await?)
    }
}

/// Microsecond precision: what PostgreSQL keeps.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn digest(s: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    URL_SAFE_NO_PAD.encode(Sha256::digest(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_grows_and_is_bounded() {
        let p = ThrottlePolicy {
            free_attempts: 3,
            account_free_attempts: 30,
            max_lock: Duration::from_secs(60),
            forget_after: Duration::from_secs(900),
        };
        let locks: Vec<u64> = (1..=12).map(|n| p.lock_after(3, n).as_secs()).collect();
        assert_eq!(locks, vec![0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.lock_after(3, i64::MAX).as_secs(), 60);
    }

    #[test]
    fn counters_are_per_account_and_address_and_fixed_size() {
        let id = Uuid::now_v7();
        let a = Keys::new(Account::User(id), "192.0.2.1");
        let b = Keys::new(Account::User(id), "192.0.2.2");
        assert_ne!(a.pair, b.pair);
        assert_eq!(a.account, b.account);
        let alice = Keys::new(Account::Unknown(" Alice@Example.COM "), "");
        let same = Keys::new(Account::Unknown("alice@example.com"), "");
        assert_eq!(alice.account, same.account);
        assert_ne!(alice.account, a.account);
        let long = "x".repeat(60_000);
        let huge = Keys::new(Account::Unknown(&long), "192.0.2.1");
        assert_eq!((huge.pair.len(), huge.account.len()), (43, 43));
    }
}
