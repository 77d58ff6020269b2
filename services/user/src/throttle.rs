//! The password throttle: every password check (a login through the auth
//! service, the current password of ChangePassword) is counted against the
//! account it names, twice: per account and client address, which locks
//! soon, and per account across all addresses, which locks only after many
//! more failures. So a flood from one address locks out that address, not
//! the owner elsewhere, while an attacker with many addresses is still
//! bounded per account. Locks grow with each failure and are bounded
//! (seconds, not days), so guessing slows to a crawl but the owner is never
//! locked out for long.
//!
//! Under contention: a check is counted as a failure before the password is
//! hashed (so concurrent guesses cannot slip past a lock) and given back if
//! the password was right. In one process the checks of one account take
//! turns (see [`Turns`]), so right passwords in flight together never count
//! against each other, and waiting for a turn holds no database connection.
//! The login path's database work has its own share of the pool
//! ([`ThrottleLimits::database_share`]) so that reads always find
//! connections, a check that cannot even queue is refused at once, and a
//! lock this process has seen answers without the database until it ends.

use crate::{
    error::Error,
    lock_ignoring_poison,
    store::{Attempt, Counter, UserStore},
};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use suite_events::{Event, outbox::Wake};
use suite_proto::{
    Login,
    time::{now, to_timestamp},
    user::AccountLocked,
};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};
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
    Unknown(&'a Login),
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
            Account::Unknown(login) => format!("login:{}", login.as_str()),
        };
        Self {
            pair: digest(&format!("{account}\n{address}")),
            account: digest(&account),
        }
    }
}

/// How many password checks may be in progress, and how much of the
/// database they may use.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Checks in progress at once (waiting for their turn included); more
    /// are refused at once (ResourceExhausted: 429).
    pub max_in_flight: usize,
    /// Checks of one account waiting for their turn; more are refused at
    /// once, so one account's storm cannot take the whole of `max_in_flight`.
    pub max_waiting_per_account: usize,
    /// Database calls of the password checks at once: a share of the pool,
    /// so that a storm of logins leaves connections to every other call.
    pub database_share: usize,
}

/// The throttle over the store's counters.
pub struct Throttle {
    store: Arc<dyn UserStore>,
    policy: ThrottlePolicy,
    /// The outbox relay, woken after an account lock's event is written.
    events: Wake,
    turns: Turns,
    /// Admission: one permit per check in progress.
    in_flight: Arc<Semaphore>,
    /// The login path's share of the database pool.
    database: Semaphore,
    /// Locks this process has seen, by counter key: a check against one of
    /// them is refused without asking the database. A lock ends at its time
    /// (a reservation that finds a counter locked counts nothing), except
    /// when a check counted before it, in flight on another replica, proves
    /// right and gives its failure back: then this process refuses from
    /// memory for the rest of a lock the database has lifted (at most the
    /// lock's length, and only at the edge of a lock).
    known_locks: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Who is told by mail of a lock of their whole account (unset: nobody).
    lock_notices: Option<crate::core::email::MailPolicy>,
    /// When this process last told each user of a lock: at most one notice
    /// an hour per user and replica, so guesses cannot flood a mailbox.
    noticed: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

/// Known locks kept at most (beyond, the ended ones are dropped first, then
/// all: the database still has them).
const MAX_KNOWN_LOCKS: usize = 10_000;

/// A check that may go ahead; give it back with [`Throttle::release`] if
/// the password was right. It holds the account's turn until then.
#[must_use]
pub struct Reservation {
    keys: Keys,
    /// Failures from this account and address, this one included.
    pub failures: i64,
    /// The user counted against, if the login names one.
    user: Option<Uuid>,
    /// Each counter's lock, if this failure imposes one (pair, account).
    locks: Vec<Option<DateTime<Utc>>>,
    _turn: Turn,
}

impl Throttle {
    pub fn new(
        store: Arc<dyn UserStore>,
        policy: ThrottlePolicy,
        limits: ThrottleLimits,
        events: Wake,
    ) -> Self {
        Self {
            store,
            policy,
            events,
            turns: Turns::new(limits.max_waiting_per_account),
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight.max(1))),
            database: Semaphore::new(limits.database_share.max(1)),
            known_locks: Mutex::default(),
            lock_notices: None,
            noticed: Mutex::default(),
        }
    }

    /// Tells users by mail when wrong passwords lock their whole account.
    pub fn with_lock_notices(mut self, mail: Option<crate::core::email::MailPolicy>) -> Self {
        self.lock_notices = mail;
        self
    }

    /// Runs a database call of the password checks within their share of
    /// the pool (waiting for it holds no connection).
    pub async fn database<T>(&self, call: impl Future<Output = T>) -> Result<T, Error> {
        let _permit = self
            .database
            .acquire()
            .await
            .map_err(|_| Error::Unavailable("the password checks are closed".into()))?;
        Ok(call.await)
    }

    /// Counts a password check before it is made: `Throttled` (and nothing
    /// counted) while either counter of `account` and `address` is locked.
    /// Waits for the account's turn first (see [`Turns`]).
    pub async fn reserve(&self, account: Account<'_>, address: &str) -> Result<Reservation, Error> {
        let admitted = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| {
                Error::ResourceExhausted("too many password checks in progress; try again shortly")
            })?;
        let keys = Keys::new(account, address);
        let turn = self.turns.take(&keys.account, admitted).await?;
        let now = now();
        if let Some(until) = self.known_lock(&keys, now) {
            crate::metrics::count_password_check("locked");
            return Err(Error::Throttled((until - now).to_std().unwrap_or_default()));
        }
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
        let forget_before = now - chrono::Duration::from_std(p.forget_after).unwrap_or_default();
        let attempt = self
            .database(self.store.reserve_attempt(&counters, now, forget_before))
            .await??;
        match attempt {
            Attempt::Locked { until, counter } => {
                crate::metrics::count_password_check("locked");
                let key = [&keys.pair, &keys.account][counter.min(1)];
                self.know_lock(key, until, now);
                Err(Error::Throttled((until - now).to_std().unwrap_or_default()))
            }
            Attempt::Counted(counters) => Ok(Reservation {
                failures: counters.first().map_or(0, |f| f.count),
                user: match account {
                    Account::User(id) => Some(id),
                    Account::Unknown(_) => None,
                },
                locks: counters.iter().map(|f| f.locked_until).collect(),
                keys,
                _turn: turn,
            }),
        }
    }

    /// The password was right: its address starts afresh, and the account
    /// gets this check back.
    pub async fn release(&self, r: Reservation) -> Result<(), Error> {
        crate::metrics::count_password_check("right");
        let free = self.policy.account_free_attempts;
        self.database(
            self.store
                .release_attempt(&r.keys.pair, &r.keys.account, free),
        )
        .await??;
        Ok(())
    }

    /// The password was wrong: the reservation stands as the failure.
    pub async fn fail(&self, r: Reservation) {
        crate::metrics::count_password_check("wrong");
        tracing::info!(failures = r.failures, "wrong password");
        // The locks this failure imposed stand: later checks meet them here.
        let now = now();
        for (key, until) in [&r.keys.pair, &r.keys.account].into_iter().zip(&r.locks) {
            if let Some(until) = until {
                self.know_lock(key, *until, now);
            }
        }
        // A failure that locks a user's logins is an event (nobody's
        // logins, an unknown name's, are not).
        let (Some(user), Some(until)) = (r.user, r.locks.iter().flatten().max()) else {
            return;
        };
        let locked = AccountLocked {
            user_id: user.to_string(),
            locked_until: Some(to_timestamp(*until)),
            whole_account: r.locks.get(1).copied().flatten().is_some(),
        };
        let event = Event::new(&locked, user);
        let letters = match locked.whole_account {
            true => self.lock_notice(user, *until, now).await,
            false => Vec::new(),
        };
        let also = crate::store::Also {
            letters: &letters,
            ..Default::default()
        };
        let appended = self
            .database(
                self.store
                    .append_events(std::slice::from_ref(&event), &also),
            )
            .await;
        match appended.and_then(|r| r.map_err(Error::from)) {
            Ok(()) => {
                self.events.wake();
                if let (Some(mail), false) = (&self.lock_notices, letters.is_empty()) {
                    mail.wake.wake();
                }
            }
            // The lock holds regardless; only its announcement is lost.
            Err(e) => tracing::warn!(error = %e, "recording an account lock's event failed"),
        }
    }

    /// The notice of a lock of `user`'s whole account until `until`, unless
    /// notices are off or this process told the user within the hour.
    async fn lock_notice(
        &self,
        user: Uuid,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Vec<crate::mail::letters::Letter> {
        let Some(mail) = &self.lock_notices else {
            return Vec::new();
        };
        {
            let mut noticed = lock_ignoring_poison(&self.noticed);
            noticed.retain(|_, at| *at > now - chrono::Duration::hours(1));
            if noticed.contains_key(&user) || noticed.len() >= MAX_KNOWN_LOCKS {
                return Vec::new();
            }
            noticed.insert(user, now);
        }
        let Ok(Some(record)) = self.store.get(user).await else {
            return Vec::new();
        };
        let to = crate::mail::letters::Addressee {
            email: record.email.as_str(),
            name: record.greeting_name(),
        };
        let until = until.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        vec![mail.letters.account_locked(&to, &until)]
    }

    /// Deletes counters that can never matter again.
    pub async fn prune(&self) -> Result<u64, Error> {
        let now = now();
        let before = now - chrono::Duration::from_std(self.policy.forget_after).unwrap_or_default();
        lock_ignoring_poison(&self.known_locks).retain(|_, until| *until > now);
        Ok(self.store.prune_failures(before, now).await?)
    }

    /// The latest lock this process knows of on either counter of `keys`.
    fn known_lock(&self, keys: &Keys, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let locks = lock_ignoring_poison(&self.known_locks);
        [&keys.pair, &keys.account]
            .into_iter()
            .filter_map(|k| locks.get(k.as_str()).copied())
            .filter(|until| *until > now)
            .max()
    }

    fn know_lock(&self, key: &str, until: DateTime<Utc>, now: DateTime<Utc>) {
        let mut locks = lock_ignoring_poison(&self.known_locks);
        if locks.len() >= MAX_KNOWN_LOCKS {
            locks.retain(|_, until| *until > now);
            if locks.len() >= MAX_KNOWN_LOCKS {
                locks.clear();
            }
        }
        locks.insert(key.to_owned(), until);
    }
}

/// The checks of one account take turns in this process: one is counted,
/// hashed and given back before the next is counted. So right passwords
/// sent together (a client retrying, many devices at once) never count as
/// failures against each other, a storm on one account uses one hashing
/// thread at a time (the others stay for other accounts), and the
/// reservations of one account never contend in the database. Across
/// replicas the database's row locks still serialize the counting, so the
/// throttle's bound (at most the free attempts checked before a lock)
/// holds whatever the number of replicas.
struct Turns {
    accounts: Arc<Mutex<HashMap<String, AccountTurns>>>,
    max_waiting: usize,
}

struct AccountTurns {
    lock: Arc<tokio::sync::Mutex<()>>,
    /// Checks holding or waiting for this account's turn.
    checks: usize,
}

/// An account's turn (or a place in its queue, until the turn comes): gives
/// it to the next check when dropped, and forgets the account when nobody
/// else waits.
struct Turn {
    accounts: Arc<Mutex<HashMap<String, AccountTurns>>>,
    key: String,
    held: Option<OwnedMutexGuard<()>>,
    _admitted: OwnedSemaphorePermit,
}

impl Turns {
    fn new(max_waiting: usize) -> Self {
        Self {
            accounts: Arc::default(),
            max_waiting,
        }
    }

    /// Waits for `account`'s turn (in arrival order); refused at once if
    /// too many checks of it are waiting already. A call cancelled while
    /// waiting leaves the queue.
    async fn take(&self, account: &str, admitted: OwnedSemaphorePermit) -> Result<Turn, Error> {
        let lock = {
            let mut accounts = lock_ignoring_poison(&self.accounts);
            let entry = accounts
                .entry(account.to_owned())
                .or_insert_with(|| AccountTurns {
                    lock: Arc::default(),
                    checks: 0,
                });
            // One check holds the turn; the others wait.
            if entry.checks > self.max_waiting {
                crate::metrics::count_password_check("queue_full");
                return Err(Error::ResourceExhausted(
                    "too many password checks of this account in progress; try again shortly",
                ));
            }
            entry.checks += 1;
            Arc::clone(&entry.lock)
        };
        let mut turn = Turn {
            accounts: Arc::clone(&self.accounts),
            key: account.to_owned(),
            held: None,
            _admitted: admitted,
        };
        turn.held = Some(lock.lock_owned().await);
        Ok(turn)
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        // The turn passes on first; then this check leaves the count.
        drop(self.held.take());
        let mut accounts = lock_ignoring_poison(&self.accounts);
        if let Some(entry) = accounts.get_mut(&self.key) {
            entry.checks = entry.checks.saturating_sub(1);
            if entry.checks == 0 {
                accounts.remove(&self.key);
            }
        }
    }
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
        let login = |raw: &str| Login::parse(raw).expect("a login");
        let alice = Keys::new(Account::Unknown(&login(" Alice@Example.COM ")), "");
        let same = Keys::new(Account::Unknown(&login("alice@example.com")), "");
        assert_eq!(alice.account, same.account);
        assert_ne!(alice.account, a.account);
        // The longest login there is (a longer one is refused as it is
        // parsed), and a long address.
        let long = login(&"x".repeat(suite_proto::MAX_LOGIN_CHARS));
        let huge = Keys::new(Account::Unknown(&long), &"1".repeat(60_000));
        assert_eq!((huge.pair.len(), huge.account.len()), (43, 43));
    }
}
