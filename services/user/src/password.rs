//! Password strength, argon2id hashing and verification, run on a bounded
//! blocking pool so that a burst of logins queues instead of stalling the
//! async runtime (and other RPCs with it).

use crate::error::Error;
use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher as _, PasswordVerifier as _, phc::PasswordHash},
};
use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};
use tokio::sync::Semaphore;

/// Argon2id cost parameters (OWASP's defaults: 19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Copy)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: Params::DEFAULT_M_COST,
            iterations: Params::DEFAULT_T_COST,
            parallelism: Params::DEFAULT_P_COST,
        }
    }
}

impl HashParams {
    pub fn to_argon2(self) -> Result<Params, argon2::Error> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None)
    }
}

/// The outcome of a verification.
pub enum Verified {
    Wrong,
    /// Right; with a fresh hash when the stored one used older parameters.
    Right {
        rehash: Option<String>,
    },
}

/// Hashes and verifies passwords on a bounded blocking pool.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    min_score: u8,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    /// Verified against when the user does not exist, so that an unknown user
    /// costs the same time as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// `concurrency` hashes run at once; up to `max_waiting` more wait for a turn.
    pub async fn new(
        params: HashParams,
        min_score: u8,
        concurrency: usize,
        max_waiting: usize,
    ) -> Result<Self, Error> {
        let params = params
            .to_argon2()
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        let p = params.clone();
        let dummy_hash: Arc<str> = tokio::task::spawn_blocking(move || {
            let mut secret = [0u8; 16];
            getrandom_fill(&mut secret);
            hash_with(&p, &secret)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))??
        .into();
        Ok(Self {
            params,
            min_score,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
            dummy_hash,
        })
    }

    /// How many hash jobs are waiting for a turn (for metrics).
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Runs `job` on the blocking pool once a permit is free.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(Error::ResourceExhausted(
                "too many password operations queued; try again shortly",
            ));
        }
        let m = crate::metrics::metrics();
        m.password_hash_queued.inc();
        let permit = self.permits.clone().acquire_owned().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        m.password_hash_queued.dec();
        let permit = permit.map_err(|_| Error::Unavailable("password pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            m.password_hash_running.inc();
            let out = job();
            m.password_hash_running.dec();
            out
        })
        .await
        .map_err(|e| Error::Internal(format!("password job failed: {e}")))
    }

    /// Checks `password` is not easily guessed (also from `related` inputs
    /// such as the username and email), then hashes it. A weak password is
    /// reported under `field`.
    pub async fn hash_new(
        &self,
        password: String,
        related: Vec<String>,
        field: &'static str,
    ) -> Result<String, Error> {
        let params = self.params.clone();
        let min_score = self.min_score;
        self.run(move || {
            let inputs: Vec<&str> = related.iter().map(String::as_str).collect();
            let entropy = zxcvbn::zxcvbn(&password, &inputs);
            if (entropy.score() as u8) < min_score {
                let hint = entropy
                    .feedback()
                    .and_then(|f| f.warning().map(|w| w.to_string()))
                    .unwrap_or_else(|| "add more words or characters".into());
                return Err(Error::invalid(field, format!("too easy to guess: {hint}")));
            }
            hash_with(&params, password.as_bytes())
        })
        .await?
    }

    /// Verifies `password` against `stored` (or against the dummy hash when
    /// there is no user), in the same time either way.
    pub async fn verify(
        &self,
        password: String,
        stored: Option<String>,
    ) -> Result<Verified, Error> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        self.run(move || {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                tracing::error!("a stored password hash cannot be parsed");
                return Ok(Verified::Wrong);
            };
            let ok = Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok();
            if !ok || !exists {
                return Ok(Verified::Wrong);
            }
            let rehash = if is_current(&parsed, &params) {
                None
            } else {
                Some(hash_with(&params, password.as_bytes())?)
            };
            Ok(Verified::Right { rehash })
        })
        .await?
    }
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    getrandom_fill(&mut salt);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_with_salt(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("hashing failed: {e}")))
}

/// Whether a stored hash already uses argon2id at the configured parameters.
fn is_current(hash: &PasswordHash, params: &Params) -> bool {
    let Ok(stored) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm == Algorithm::Argon2id.ident()
        && hash.version == Some(Version::V0x13.into())
        && stored.m_cost() == params.m_cost()
        && stored.t_cost() == params.t_cost()
        && stored.p_cost() == params.p_cost()
}

fn getrandom_fill(buf: &mut [u8]) {
    // The OS generator failing is not recoverable; argon2's own salt
    // generation would abort the same way.
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> HashParams {
        HashParams {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[tokio::test]
    async fn weak_passwords_are_refused_and_strong_ones_verify() -> Result<(), Error> {
        let h = PasswordHasher::new(cheap(), 3, 2, 16).await?;
        let weak = h.hash_new("password123".into(), vec![], "password").await;
        assert!(matches!(weak, Err(Error::InvalidArgument(ref v)) if v[0].field == "password"));
        let from_name = h
            .hash_new(
                "alice.wonderland".into(),
                vec!["alice.wonderland".into()],
                "password",
            )
            .await;
        assert!(from_name.is_err());
        let hash = h
            .hash_new("correct horse battery staple".into(), vec![], "password")
            .await?;
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(matches!(
            h.verify("correct horse battery staple".into(), Some(hash.clone()))
                .await?,
            Verified::Right { rehash: None }
        ));
        assert!(matches!(
            h.verify("wrong".into(), Some(hash)).await?,
            Verified::Wrong
        ));
        assert!(matches!(
            h.verify("anything".into(), None).await?,
            Verified::Wrong
        ));
        Ok(())
    }

    #[tokio::test]
    async fn hashes_with_old_parameters_are_upgraded_on_success() -> Result<(), Error> {
        let old = PasswordHasher::new(cheap(), 0, 1, 16).await?;
        let hash = old
            .hash_new("correct horse battery staple".into(), vec![], "password")
            .await?;
        let new = PasswordHasher::new(
            HashParams {
                memory_kib: 2048,
                ..cheap()
            },
            0,
            1,
            16,
        )
        .await?;
        match new
            .verify("correct horse battery staple".into(), Some(hash))
            .await?
        {
            Verified::Right { rehash: Some(h) } => assert!(h.contains("m=2048")),
            _ => panic!("expected a rehash"),
        }
        Ok(())
    }
}
