//! The hasher's tests: strength, verification, upgrades, the failure floor.

use super::*;

/// A password as the adapter hands it on.
fn pw(raw: &str) -> Password {
    Password::parse(raw.to_owned()).expect("not empty")
}

fn options(concurrency: usize) -> HashingOptions {
    HashingOptions {
        concurrency,
        max_waiting: 16,
        nice: 0,
    }
}

fn cheap() -> HashParams {
    HashParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    }
}

#[tokio::test]
async fn weak_passwords_are_refused_and_strong_ones_verify() -> Result<(), Error> {
    let h = PasswordHasher::new(cheap(), 3, options(2)).await?;
    let weak = h.hash_new(pw("password123"), vec![], "password").await;
    assert!(matches!(weak, Err(Error::InvalidArgument(ref v)) if v[0].field == "password"));
    let from_name = h
        .hash_new(
            pw("alice.wonderland"),
            vec!["alice.wonderland".into()],
            "password",
        )
        .await;
    assert!(from_name.is_err());
    let hash = h
        .hash_new(pw("correct horse battery staple"), vec![], "password")
        .await?;
    assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
    assert!(matches!(
        h.verify(pw("correct horse battery staple"), Some(hash.clone()))
            .await?,
        PasswordCheck::Right { rehash: None }
    ));
    assert!(matches!(
        h.verify(pw("wrong"), Some(hash)).await?,
        PasswordCheck::Wrong(_)
    ));
    assert!(matches!(
        h.verify(pw("anything"), None).await?,
        PasswordCheck::Wrong(_)
    ));
    Ok(())
}

/// An unknown user costs one argon2 verification, as a wrong password
/// does: counted, not timed.
#[tokio::test]
async fn an_unknown_user_is_verified_against_the_dummy_hash() -> Result<(), Error> {
    let h = PasswordHasher::new(cheap(), 0, options(1)).await?;
    let hash = h
        .hash_new(pw("correct horse battery staple"), vec![], "password")
        .await?;
    let before = h.verifications();
    assert!(matches!(
        h.verify(pw("a wrong password"), Some(hash)).await?,
        PasswordCheck::Wrong(_)
    ));
    assert_eq!(h.verifications(), before + 1);
    assert!(matches!(
        h.verify(pw("a wrong password"), None).await?,
        PasswordCheck::Wrong(_)
    ));
    assert_eq!(h.verifications(), before + 2, "no dummy verification");
    Ok(())
}

#[tokio::test]
async fn hashes_with_old_parameters_are_upgraded_on_success() -> Result<(), Error> {
    let old = PasswordHasher::new(cheap(), 0, options(1)).await?;
    let hash = old
        .hash_new(pw("correct horse battery staple"), vec![], "password")
        .await?;
    let new = PasswordHasher::new(
        HashParams {
            memory_kib: 2048,
            ..cheap()
        },
        0,
        options(1),
    )
    .await?;
    match new
        .verify(pw("correct horse battery staple"), Some(hash))
        .await?
    {
        PasswordCheck::Right { rehash: Some(h) } => assert!(h.contains("m=2048")),
        _ => panic!("expected a rehash"),
    }
    Ok(())
}

/// A failed verification waits out the floor, whatever the hash it
/// failed against (the service's own, an imported bcrypt or argon2 at
/// the cheapest accepted, none); a right one is answered at once.
/// Tokio's clock is paused: the floor is stretched to an hour and the
/// sleep ends as soon as nothing else is left to run, so this checks the
/// clock's reading, not a stopwatch's.
#[tokio::test(start_paused = true)]
async fn a_failed_verification_is_answered_no_sooner_than_the_floor() -> Result<(), Error> {
    use argon2::password_hash::PasswordHasher as _;
    const FLOOR: Duration = Duration::from_secs(3600);
    let h = PasswordHasher::new(cheap(), 0, options(1))
        .await?
        .with_failure_floor_at_least(FLOOR);
    let password = "correct horse battery staple";
    let native = h.hash_new(pw(password), vec![], "password").await?;
    let bcrypt = bcrypt::hash(password, crate::imported_hash::MIN_BCRYPT_COST)
        .map_err(|e| Error::Internal(e.to_string()))?;
    let weakest_argon2 = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(7 * 1024, 5, 1, None).map_err(|e| Error::Internal(e.to_string()))?,
    )
    .hash_password_with_salt(password.as_bytes(), b"sixteen byte slt")
    .map_err(|e| Error::Internal(e.to_string()))?
    .to_string();
    assert_eq!(crate::imported_hash::validate(&weakest_argon2), Ok(()));
    for stored in [Some(native), Some(bcrypt), Some(weakest_argon2), None] {
        let asked = tokio::time::Instant::now();
        let PasswordCheck::Wrong(failure) = h.verify(pw("a wrong guess"), stored.clone()).await?
        else {
            panic!("a wrong password verified against {stored:?}");
        };
        h.pad(failure).await?;
        // Less the verification's own (real) time, which the clock
        // did not see pass.
        assert!(
            asked.elapsed() >= FLOOR - Duration::from_secs(60),
            "{stored:?}: answered after {:?}",
            asked.elapsed()
        );
        if let Some(stored) = stored {
            let asked = tokio::time::Instant::now();
            let right = h.verify(pw(password), Some(stored)).await?;
            assert!(matches!(right, PasswordCheck::Right { .. }));
            assert_eq!(asked.elapsed(), Duration::ZERO, "a right password waited");
        }
    }
    Ok(())
}

/// The floor is measured at the first failure (not at start-up, nor at
/// a right password), once, and is at least the costliest verification
/// an import accepts and the service's own.
#[tokio::test(start_paused = true)]
async fn the_floor_is_measured_once_at_the_first_failure() -> Result<(), Error> {
    let h = PasswordHasher::new(cheap(), 0, options(1)).await?;
    let hash = h
        .hash_new(pw("correct horse battery staple"), vec![], "password")
        .await?;
    let right = h
        .verify(pw("correct horse battery staple"), Some(hash.clone()))
        .await?;
    assert!(matches!(right, PasswordCheck::Right { .. }));
    assert_eq!(h.measured_floor(), None, "measured before any failure");
    let mut floors = Vec::new();
    for _ in 0..2 {
        let asked = tokio::time::Instant::now();
        let PasswordCheck::Wrong(failure) = h.verify(pw("wrong"), Some(hash.clone())).await? else {
            panic!("a wrong password verified");
        };
        h.pad(failure).await?;
        let floor = h.measured_floor().expect("measured at the failure");
        assert!(
            asked.elapsed() + Duration::from_secs(1) >= floor,
            "{:?} < {floor:?}",
            asked.elapsed()
        );
        floors.push(floor);
    }
    assert_eq!(floors[0], floors[1], "measured again");
    let import = COSTLIEST_IMPORT.get().copied().expect("import measured");
    let native = h.floor.native.get().copied().expect("native measured");
    assert_eq!(floors[0], import.max(native));
    Ok(())
}

/// bcrypt checks the first 72 bytes of a password: a longer right one
/// signs in but never replaces the hash; one of at most 72 bytes does.
#[tokio::test]
async fn a_bcrypt_hash_is_replaced_only_by_a_password_it_checked_whole() -> Result<(), Error> {
    let h = PasswordHasher::new(cheap(), 0, options(1)).await?;
    let prefix = "p".repeat(crate::imported_hash::BCRYPT_KEY_BYTES);
    let cost = crate::imported_hash::MIN_BCRYPT_COST;
    let hash_of = |p: &str| bcrypt::hash(p, cost).map_err(|e| Error::Internal(e.to_string()));
    let long = hash_of(&format!("{prefix}the owner's tail"))?;
    for password in [
        format!("{prefix}the owner's tail"),
        format!("{prefix}other"),
    ] {
        match h.verify(pw(&password), Some(long.clone())).await? {
            PasswordCheck::Right { rehash: None } => {}
            PasswordCheck::Right { rehash: Some(_) } => panic!("upgraded from a long password"),
            PasswordCheck::Wrong(_) => panic!("bcrypt refused its own 72 bytes"),
        }
    }
    for password in [prefix.clone(), "short and sweet".to_owned()] {
        let hash = hash_of(&password)?;
        match h.verify(pw(&password), Some(hash)).await? {
            PasswordCheck::Right { rehash: Some(new) } => {
                assert!(new.starts_with("$argon2id$"))
            }
            _ => panic!("not upgraded"),
        }
    }
    Ok(())
}

/// Our PHC strings and argon2's own are the same thing: each verifies
/// the other's (the stored hashes of earlier releases were argon2's).
#[test]
fn hashes_agree_with_the_argon2_crates_own() {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
    let params = cheap().to_argon2().expect("params");
    let mut buffer = Vec::new();
    let ours = hash_with(&params, b"correct horse", &mut buffer).expect("hash");
    let parsed = PasswordHash::new(&ours).expect("PHC");
    assert!(
        Argon2::default()
            .verify_password(b"correct horse", &parsed)
            .is_ok()
    );
    let theirs = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_with_salt(b"correct horse", b"sixteen byte slt")
        .expect("hash");
    assert!(matches_hash(b"correct horse", &theirs, &mut buffer));
    assert!(!matches_hash(b"correct horsf", &theirs, &mut buffer));
    // The buffer grew to the parameters' size once, and is reused; its
    // capacity is past glibc's mmap threshold, so freeing it unmaps it.
    assert_eq!(buffer.len(), 1024);
    assert!(buffer.capacity() * size_of::<Block>() > OWN_MAPPING_ABOVE);
}
