//! The argon2id bound of logins on this machine, for `scripts/bench_deployed.py`:
//! password verifications at the user service's default parameters on every
//! core through its own hasher, nothing else running. Logins can go no faster.
//!
//! `argon2_bound <seconds>`; prints one JSON object: verifications, per second,
//! and the threads used.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};
use std::time::{Duration, Instant};
use suite_user::password::{HashingOptions, PasswordHasher};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const PASSWORD: &str = "correct horse battery staple";

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(5);
    let config = suite_user::Config::defaults();
    let threads = config.hash_concurrency();
    let options = HashingOptions {
        nice: 0,
        ..config.hashing()
    };
    let hasher = PasswordHasher::new(config.hash_params(), 0, options).await?;
    let password = suite_proto::Password::parse(PASSWORD.to_owned())?;
    let hash = hasher
        .hash_new(password.clone(), vec![], "password")
        .await?;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut callers = Vec::new();
    // Twice as many callers as threads, so that a thread never waits.
    for _ in 0..threads * 2 {
        let (hasher, hash, done, password) =
            (hasher.clone(), hash.clone(), done.clone(), password.clone());
        callers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if hasher
                    .verify(password.clone(), Some(hash.clone()))
                    .await
                    .is_ok()
                {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for c in callers {
        c.await?;
    }
    let n = done.load(Ordering::Relaxed);
    let per_second = n as f64 / start.elapsed().as_secs_f64();
    println!("{{\"verifications\":{n},\"per_second\":{per_second:.1},\"threads\":{threads}}}");
    Ok(())
}
