//! The login throttle: a soft lock per login name that grows with each
//! failure and is bounded (seconds, not days), so an attacker guessing
//! slows to a crawl but cannot lock the real user out for long.

use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures allowed before any lock.
    pub free_attempts: i64,
    /// The longest lock.
    pub max_lock: Duration,
    /// Failures older than this are forgotten.
    pub forget_after: Duration,
}

impl ThrottlePolicy {
    /// The lock after the `failures`-th failure: none for the free attempts,
    /// then 1 s, 2 s, 4 s, … up to `max_lock`.
    pub fn lock_after(&self, failures: i64) -> Duration {
        let over = failures - self.free_attempts;
        if over <= 0 {
            return Duration::ZERO;
        }
        let secs = 1u64
            .checked_shl((over - 1).min(32) as u32)
            .unwrap_or(u64::MAX);
        Duration::from_secs(secs).min(self.max_lock)
    }
}

/// The longest login name looked at: the longest valid email address.
pub const MAX_LOGIN_CHARS: usize = 254;

/// The key failures are counted under: a digest of the login as the user
/// service matches it, so every key has the same small size whatever was sent.
pub fn login_key(login: &str) -> String {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    use sha2::{Digest, Sha256};
    URL_SAFE_NO_PAD.encode(Sha256::digest(suite_proto::canonical_login(login)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_grows_and_is_bounded() {
        let p = ThrottlePolicy {
            free_attempts: 3,
            max_lock: Duration::from_secs(60),
            forget_after: Duration::from_secs(900),
        };
        let locks: Vec<u64> = (1..=12).map(|n| p.lock_after(n).as_secs()).collect();
        assert_eq!(locks, vec![0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(p.lock_after(i64::MAX).as_secs(), 60);
        assert_eq!(
            login_key(" Alice@Example.COM "),
            login_key("alice@example.com")
        );
        assert_ne!(login_key("alice@example.com"), login_key("bob@example.com"));
        assert_eq!(login_key(&"x".repeat(60_000)).len(), 43);
    }
}
