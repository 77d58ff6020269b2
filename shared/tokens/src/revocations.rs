//! What a verifier refuses although the signature and `exp` say yes: tokens
//! of revoked sessions, and tokens a user was given before they were
//! deleted, changed their password or had their roles changed. Filled from
//! the events (by `suite-events`), consulted on every call without a round
//! trip; an entry is forgotten once every token it could refuse has
//! expired, so the set stays as small as the recent revocations. What
//! lasts (an event stream) waits on [`Revocations::refused`] to end the
//! moment its token is revoked.

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use uuid::Uuid;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The shared set. Clones share it.
#[derive(Debug, Clone)]
pub struct Revocations {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// How long after a revocation a token it refuses can still be unexpired.
    keep: Duration,
    /// Whether the recent past has been read: until then the set may miss
    /// revocations, and its owner is not ready.
    caught_up: AtomicBool,
    /// Skips the lock when nothing is revoked (the common case).
    empty: AtomicBool,
    /// When expired entries were last dropped (at most once a second, so a
    /// burst of revocations does not rescan the set for each).
    pruned_at: std::sync::atomic::AtomicI64,
    state: RwLock<State>,
    /// Woken after every change, for [`Revocations::refused`].
    changed: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct State {
    /// Revoked sessions, with when they were revoked.
    sessions: HashMap<Uuid, Millis>,
    /// Users whose tokens issued before the instant are refused.
    users: HashMap<Uuid, Millis>,
}

impl Revocations {
    /// A set whose entries are kept for `keep`: the longest an access token
    /// lives (plus the verifier's leeway).
    pub fn new(keep: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                keep,
                caught_up: AtomicBool::new(false),
                empty: AtomicBool::new(true),
                pruned_at: std::sync::atomic::AtomicI64::new(0),
                state: RwLock::default(),
                changed: tokio::sync::Notify::new(),
            }),
        }
    }

    /// A set that is complete from the start (nothing feeds it).
    pub fn complete(keep: Duration) -> Self {
        let set = Self::new(keep);
        set.mark_caught_up();
        set
    }

    /// How far back the events must be read for the set to be complete.
    pub fn lookback(&self) -> Duration {
        self.inner.keep
    }

    pub fn mark_caught_up(&self) {
        self.inner.caught_up.store(true, Ordering::Release);
    }

    pub fn is_caught_up(&self) -> bool {
        self.inner.caught_up.load(Ordering::Acquire)
    }

    /// Every token of session `id` is refused.
    pub fn revoke_session(&self, id: Uuid, at: Millis) {
        self.update(|s| {
            s.sessions.entry(id).or_insert(at);
        });
    }

    /// Every token user `id` was given before `at` is refused.
    pub fn revoke_user_before(&self, id: Uuid, at: Millis) {
        self.update(|s| {
            let before = s.users.entry(id).or_insert(at);
            *before = (*before).max(at);
        });
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        let Ok(mut state) = self.inner.state.write() else {
            return;
        };
        change(&mut state);
        let now = now_millis();
        if now - self.inner.pruned_at.load(Ordering::Relaxed) >= 1000 {
            self.inner.pruned_at.store(now, Ordering::Relaxed);
            let forget_before = now - self.keep_millis();
            state.sessions.retain(|_, at| *at >= forget_before);
            state.users.retain(|_, at| *at >= forget_before);
        }
        self.inner.empty.store(
            state.sessions.is_empty() && state.users.is_empty(),
            Ordering::Release,
        );
        drop(state);
        self.inner.changed.notify_waiters();
    }

    /// Completes once a token of `user`, for `session`, issued at `issued`,
    /// is refused (never, if it never is): a call that lasts ends with it.
    pub async fn refused(&self, user: Uuid, session: Option<Uuid>, issued: Millis) {
        loop {
            // Registered before the check, so that a change between the
            // check and the wait is not missed.
            let changed = self.inner.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            if self.refuses(user, session, issued) {
                return;
            }
            changed.await;
        }
    }

    fn keep_millis(&self) -> Millis {
        Millis::try_from(self.inner.keep.as_millis()).unwrap_or(Millis::MAX)
    }

    /// Whether a token of `user`, for `session`, issued at `issued`, is refused.
    pub fn refuses(&self, user: Uuid, session: Option<Uuid>, issued: Millis) -> bool {
        if self.inner.empty.load(Ordering::Acquire) {
            return false;
        }
        let Ok(state) = self.inner.state.read() else {
            // A writer panicked: refuse rather than let revoked tokens in.
            return true;
        };
        session.is_some_and(|s| state.sessions.contains_key(&s))
            || state
                .users
                .get(&user)
                .is_some_and(|before| issued < *before)
    }

    /// How many entries it holds (sessions, users).
    pub fn len(&self) -> (usize, usize) {
        self.inner
            .state
            .read()
            .map(|s| (s.sessions.len(), s.users.len()))
            .unwrap_or_default()
    }
}

pub fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX))
        .unwrap_or(0)
}

/// When a token was issued, to the millisecond: its `jti` is a UUIDv7 (whose
/// first 48 bits are that instant); else its `iat`, in whole seconds.
pub fn issued_millis(jti: &str, iat: i64) -> Millis {
    Uuid::parse_str(jti)
        .ok()
        .and_then(|id| id.get_timestamp())
        .map(|ts| {
            let (secs, nanos) = ts.to_unix();
            Millis::try_from(secs)
                .unwrap_or(Millis::MAX / 2)
                .saturating_mul(1000)
                .saturating_add(Millis::from(nanos / 1_000_000))
        })
        .unwrap_or_else(|| iat.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_refused_whenever_users_only_before_the_instant() {
        let set = Revocations::new(Duration::from_secs(900));
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let now = now_millis();
        assert!(!set.refuses(user, Some(session), now));
        set.revoke_session(session, now);
        assert!(set.refuses(user, Some(session), now + 5));
        assert!(!set.refuses(user, Some(Uuid::now_v7()), now));
        set.revoke_user_before(user, now);
        assert!(set.refuses(user, None, now - 1));
        assert!(!set.refuses(user, None, now));
        assert_eq!(set.len(), (1, 1));
    }

    #[test]
    fn entries_older_than_a_token_lifetime_are_forgotten() {
        let set = Revocations::new(Duration::from_secs(60));
        let old = now_millis() - 61_000;
        set.revoke_session(Uuid::now_v7(), old);
        set.revoke_user_before(Uuid::now_v7(), now_millis());
        assert_eq!(set.len(), (0, 1));
        // Forgotten or not, an expired revocation refuses nothing a live
        // token could be: tokens it would refuse have expired.
    }

    #[tokio::test]
    async fn a_waiting_token_is_told_of_its_revocation_and_no_other() {
        let set = Revocations::new(Duration::from_secs(900));
        let (user, session) = (Uuid::now_v7(), Uuid::now_v7());
        let issued = now_millis();
        let mut waiting = Box::pin(set.refused(user, Some(session), issued));
        assert!(futures_poll_once(waiting.as_mut()).is_pending());
        // Someone else's revocation wakes it, but does not end it.
        set.revoke_session(Uuid::now_v7(), issued);
        assert!(futures_poll_once(waiting.as_mut()).is_pending());
        set.revoke_user_before(user, issued - 1);
        assert!(futures_poll_once(waiting.as_mut()).is_pending());
        set.revoke_session(session, issued + 1);
        assert!(futures_poll_once(waiting.as_mut()).is_ready());
        // Already refused: at once.
        assert!(
            futures_poll_once(std::pin::pin!(set.refused(user, Some(session), issued))).is_ready()
        );
    }

    /// Polls a future once with a waker that does nothing.
    fn futures_poll_once<F: Future>(f: std::pin::Pin<&mut F>) -> std::task::Poll<F::Output> {
        f.poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn the_issue_instant_comes_from_a_v7_jti() {
        let jti = Uuid::now_v7();
        let ms = issued_millis(&jti.to_string(), 0);
        assert!((now_millis() - ms).abs() < 5_000);
        assert_eq!(issued_millis("not-a-uuid", 7), 7000);
    }
}
