//! Password strength, argon2id hashing and verification, run on the
//! password-hashing threads so that a burst of logins queues instead of
//! stalling the async runtime (and other RPCs with it).
//!
//! A failed verification is answered no sooner than the failure floor: the
//! time of the slowest verification the service may make (its own hashes'
//! and the costliest an import accepts), measured once, on the first
//! failure. A wrong password then takes as long whatever the account's hash
//! (native, imported, none), so its timing does not tell them apart.

use crate::{
    error::Error,
    hashing::{HashingThreads, Refused},
};
use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};
use suite_proto::Password;
use tokio::sync::OnceCell;

/// A hashing thread gives its argon2 buffer back after this long without
/// work: a storm's memory is returned once it is over, while steady logins
/// keep reusing theirs.
const RELEASE_BUFFER_AFTER: Duration = Duration::from_secs(10);

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

/// What verifying a password against a stored hash found.
pub enum PasswordCheck {
    /// Wrong, or no such user: answer it through [`PasswordHasher::pad`].
    Wrong(Failure),
    /// Right; with a fresh hash when the stored one used older parameters
    /// (or was imported), if the password may replace it.
    Right { rehash: Option<String> },
}

/// A failed verification, to be answered no sooner than the failure floor
/// after it began (see [`PasswordHasher::pad`]).
#[must_use = "a failed verification is answered through PasswordHasher::pad"]
#[derive(Debug)]
pub struct Failure {
    /// When the verification began on its hashing thread (the wait for a
    /// thread is not counted: under load a queued check would otherwise
    /// answer as soon as its own hash is done, cheap or not).
    began: tokio::time::Instant,
}

impl Failure {
    /// A verification that took `took` and has just ended.
    fn took(took: Duration) -> Self {
        let now = tokio::time::Instant::now();
        Self {
            began: now.checked_sub(took).unwrap_or(now),
        }
    }
}

/// How long a failed verification takes at least, measured lazily.
#[derive(Default)]
struct Floor {
    /// One verification at this hasher's own parameters.
    native: OnceCell<Duration>,
    /// A lower bound the measurement cannot go below (tests stretch it to
    /// see the padding; zero otherwise).
    at_least: Duration,
}

/// One verification at the costliest parameters an import accepts: the
/// same for every hasher in the process, so measured once for all of them.
static COSTLIEST_IMPORT: OnceCell<Duration> = OnceCell::const_new();

/// How the hashing threads run.
#[derive(Debug, Clone, Copy)]
pub struct HashingOptions {
    /// Hashes computed at once: one thread, and one argon2 buffer, each.
    pub concurrency: usize,
    /// Hashes allowed to wait for a thread; beyond, calls are refused.
    pub max_waiting: usize,
    /// How many nice steps below the serving threads the hashing runs.
    pub nice: u8,
}

/// Hashes and verifies passwords on the hashing threads.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    min_score: u8,
    /// Each thread reuses one argon2 block buffer, so the memory is bounded
    /// by the hash concurrency, and the allocator does not see 19 MiB come and go per hash (glibc
    /// raises its mmap threshold after the first free and keeps later blocks
    /// in a fragmented heap: hundreds of MiB after a login storm).
    threads: Arc<HashingThreads>,
    /// PasswordCheck against when the user does not exist, so that an unknown user
    /// costs the same time as a wrong password.
    dummy_hash: Arc<str>,
    /// Argon2 verifications made (the dummy's included), for the tests
    /// that an unknown user costs one as a known one does.
    verifications: Arc<std::sync::atomic::AtomicU64>,
    /// The failure floor, once measured.
    floor: Arc<Floor>,
}

impl PasswordHasher {
    pub async fn new(
        params: HashParams,
        min_score: u8,
        options: HashingOptions,
    ) -> Result<Self, Error> {
        let params = params
            .to_argon2()
            .map_err(|e| Error::Internal(format!("argon2 parameters: {e}")))?;
        let threads = HashingThreads::start(
            options.concurrency,
            options.nice,
            options.max_waiting,
            RELEASE_BUFFER_AFTER,
        )
        .map_err(|e| Error::Internal(format!("starting the password-hashing threads: {e}")))?;
        let mut hasher = Self {
            params,
            min_score,
            threads: Arc::new(threads),
            dummy_hash: Arc::from(""),
            verifications: Arc::default(),
            floor: Arc::default(),
        };
        let p = hasher.params.clone();
        let dummy = hasher
            .run(move |buffer| {
                let mut secret = [0u8; 16];
                fill_random(&mut secret);
                hash_with(&p, &secret, buffer)
            })
            .await??;
        hasher.dummy_hash = dummy.into();
        Ok(hasher)
    }

    /// A failed verification takes at least `at_least` (the measured floor
    /// if that is longer): for tests that must see a failure still waiting.
    pub fn with_failure_floor_at_least(mut self, at_least: Duration) -> Self {
        self.floor = Arc::new(Floor {
            native: OnceCell::new(),
            at_least,
        });
        self
    }

    /// Runs `job` on a hashing thread, with that thread's buffer.
    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T, Error> {
        self.threads.run(job).await.map_err(|e| match e {
            Refused::Busy => {
                Error::ResourceExhausted("too many password operations queued; try again shortly")
            }
            Refused::Failed => Error::Internal("a password job failed".into()),
        })
    }

    /// Checks `password` is not easily guessed (also from `related` inputs
    /// such as the username and email), then hashes it. A weak password is
    /// reported under `field`.
    pub async fn hash_new(
        &self,
        password: Password,
        related: Vec<String>,
        field: &'static str,
    ) -> Result<String, Error> {
        let params = self.params.clone();
        let min_score = self.min_score;
        self.run(move |buffer| {
            let inputs: Vec<&str> = related.iter().map(String::as_str).collect();
            let entropy = zxcvbn::zxcvbn(password.expose(), &inputs);
            if (entropy.score() as u8) < min_score {
                let hint = entropy
                    .feedback()
                    .and_then(|f| f.warning().map(|w| w.to_string()))
                    .unwrap_or_else(|| "add more words or characters".into());
                return Err(Error::invalid(field, format!("too easy to guess: {hint}")));
            }
            hash_with(&params, password.expose().as_bytes(), buffer)
        })
        .await?
    }

    /// Verifies `password` against `stored` (or against the dummy hash when
    /// there is no user), in the same time either way. A wrong answer is
    /// to be padded with [`Self::pad`] once the caller's throttle is done.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<PasswordCheck, Error> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let verifications = Arc::clone(&self.verifications);
        let params = self.params.clone();
        let (checked, took) = self
            .run(move |buffer| {
                let began = Instant::now();
                let checked = check(
                    password.expose().as_bytes(),
                    &stored,
                    &params,
                    buffer,
                    || {
                        verifications.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    },
                );
                (checked, began.elapsed())
            })
            .await?;
        Ok(match checked? {
            Checked::Right { rehash } if exists => PasswordCheck::Right { rehash },
            _ => PasswordCheck::Wrong(Failure::took(took)),
        })
    }

    /// Waits until `failure` is answered no sooner than the failure floor
    /// after its verification began (measuring the floor first, on the
    /// process's first failure). Call it after the throttle has counted the
    /// failure and given the account's turn back: the wait holds no turn,
    /// no hashing thread and no connection, so a storm of wrong passwords
    /// on one account is not slowed to one floor at a time.
    pub async fn pad(&self, failure: Failure) -> Result<(), Error> {
        let floor = self.floor().await?;
        tokio::time::sleep_until(failure.began + floor).await;
        Ok(())
    }

    /// The failure floor: the slowest of a verification at this hasher's
    /// parameters and at the costliest an import accepts (each measured
    /// once, on the hashing threads), and the configured least.
    async fn floor(&self) -> Result<Duration, Error> {
        let native = *self
            .floor
            .native
            .get_or_try_init(|| self.time_native())
            .await?;
        let import = *COSTLIEST_IMPORT
            .get_or_try_init(|| self.time_costliest_import())
            .await?;
        let floor = native.max(import).max(self.floor.at_least);
        crate::metrics::metrics()
            .password_failure_floor_seconds
            .set(floor.as_secs_f64());
        Ok(floor)
    }

    /// The failure floor, if a failure has measured it yet.
    pub fn measured_floor(&self) -> Option<Duration> {
        let native = self.floor.native.get()?;
        let import = COSTLIEST_IMPORT.get()?;
        Some((*native).max(*import).max(self.floor.at_least))
    }

    /// One verification (of a password that is not it) against the dummy
    /// hash, which has this hasher's parameters.
    async fn time_native(&self) -> Result<Duration, Error> {
        let dummy = Arc::clone(&self.dummy_hash);
        let took = self
            .run(move |buffer| {
                cpu_time_of(|| {
                    if let Ok(parsed) = PasswordHash::new(&dummy) {
                        black_box(matches_hash(b"the failure floor", &parsed, buffer));
                    }
                })
            })
            .await?;
        tracing::debug!(?took, "timed a verification at the service's parameters");
        Ok(took)
    }

    /// One verification at the costliest bcrypt and one at the costliest
    /// argon2 an import accepts; the slower.
    async fn time_costliest_import(&self) -> Result<Duration, Error> {
        let bcrypt = self
            .run(|_| cpu_time_of(crate::imported_hash::bcrypt_at_max_cost))
            .await?;
        let argon2 = self
            .run(|buffer| {
                let params = crate::imported_hash::costliest_argon2();
                let mut computed = Ok(());
                let took = cpu_time_of(|| {
                    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
                    computed = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
                        .hash_password_into_with_memory(
                            black_box(b"the failure floor"),
                            &[0; 16],
                            &mut out,
                            blocks(buffer, params.block_count()),
                        );
                    black_box(out);
                });
                // Cannot fail with the range's constants (tested).
                if let Err(e) = computed {
                    tracing::error!(error = %e, "timing the costliest argon2 failed");
                }
                took
            })
            .await?;
        tracing::info!(
            ?bcrypt,
            ?argon2,
            "timed verifications at the costliest imported parameters (the failure floor)"
        );
        Ok(bcrypt.max(argon2))
    }
}

/// The CPU time `work` takes on this thread (its wall time if the clock is
/// not there): the floor is what a verification costs, not how long it
/// happened to wait for a core while the machine was busy, which would
/// otherwise raise every failure's answer for the process's lifetime.
fn cpu_time_of(work: impl FnOnce()) -> Duration {
    match cpu_time::ThreadTime::try_now() {
        Ok(began) => {
            work();
            began.try_elapsed().unwrap_or_default()
        }
        Err(_) => {
            let began = Instant::now();
            work();
            began.elapsed()
        }
    }
}

/// What a verification on a hashing thread found.
enum Checked {
    Wrong,
    /// Right, with the hash to replace the stored one, if any.
    Right {
        rehash: Option<String>,
    },
}

/// Verifies `password` against `stored`; `counted` is called for each
/// argon2 verification. Blocking: runs on a hashing thread, in its `buffer`.
fn check(
    password: &[u8],
    stored: &str,
    params: &Params,
    buffer: &mut Vec<Block>,
    counted: impl FnOnce(),
) -> Result<Checked, Error> {
    // An imported bcrypt hash is never current: a right password replaces
    // it with argon2id, if bcrypt checked all of it (it keys on the first
    // 72 bytes; a longer password would let any other tail sign in for
    // good, and lock the owner's own out).
    if let Some(ok) = crate::imported_hash::verify_bcrypt(password, stored) {
        if !ok {
            return Ok(Checked::Wrong);
        }
        let rehash = if crate::imported_hash::checks_whole(password) {
            Some(hash_with(params, password, buffer)?)
        } else {
            None
        };
        return Ok(Checked::Right { rehash });
    }
    let Ok(parsed) = PasswordHash::new(stored) else {
        tracing::error!("a stored password hash cannot be parsed");
        return Ok(Checked::Wrong);
    };
    let ok = matches_hash(password, &parsed, buffer);
    counted();
    if !ok {
        return Ok(Checked::Wrong);
    }
    let rehash = if is_current(&parsed, params) {
        None
    } else {
        Some(hash_with(params, password, buffer)?)
    };
    Ok(Checked::Right { rehash })
}

impl PasswordHasher {
    /// Argon2 verifications made so far (the dummy hash's included).
    pub fn verifications(&self) -> u64 {
        self.verifications
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// glibc gives an allocation larger than its highest dynamic mmap threshold
/// (32 MiB on 64-bit) a mapping of its own, unmapped when freed; a smaller
/// one may come from a heap whose freed pages stay resident. A buffer's
/// capacity is reserved past it (untouched pages cost no memory), so that a
/// buffer given back after an idle spell really leaves the process.
const OWN_MAPPING_ABOVE: usize = 32 << 20;

/// `buffer`, grown to `blocks` if it is smaller (first use, or older, larger
/// parameters).
fn blocks(buffer: &mut Vec<Block>, blocks: usize) -> &mut [Block] {
    if buffer.len() < blocks {
        if buffer.capacity() < blocks {
            *buffer = Vec::with_capacity(blocks.max(OWN_MAPPING_ABOVE / size_of::<Block>() + 1));
        }
        buffer.resize(blocks, Block::default());
    }
    &mut buffer[..blocks]
}

/// A new argon2id PHC string of `password`, computed in `buffer`.
fn hash_with(params: &Params, password: &[u8], buffer: &mut Vec<Block>) -> Result<String, Error> {
    let failed = |e: &dyn std::fmt::Display| Error::Internal(format!("hashing failed: {e}"));
    let mut salt = [0u8; 16];
    fill_random(&mut salt);
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password,
            &salt,
            &mut out,
            blocks(buffer, params.block_count()),
        )
        .map_err(|e| failed(&e))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(&out).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Whether `password` is the one `hash` was made of (any argon2 variant,
/// version and parameters it names), computed in `buffer`; the outputs are
/// compared in constant time.
fn matches_hash(password: &[u8], hash: &PasswordHash, buffer: &mut Vec<Block>) -> bool {
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(hash),
        hash.salt.as_ref(),
        hash.hash.as_ref(),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut out = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt.as_ref(),
        &mut out,
        blocks(buffer, params.block_count()),
    );
    computed.is_ok() && Output::new(&out).is_ok_and(|o| o == *expected)
}

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

/// A random key (of a keyed digest that lives in memory only).
pub fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    fill_random(&mut key);
    key
}

pub(crate) fn fill_random(buf: &mut [u8]) {
    // The OS generator failing is not recoverable; argon2's own salt
    // generation would abort the same way.
    #[allow(clippy::expect_used)]
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests;
