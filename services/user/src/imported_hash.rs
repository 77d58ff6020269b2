//! Password hashes brought from other systems: checking that an imported
//! hash is one the service can verify at a cost within the accepted range
//! (bcrypt, or an argon2 PHC string), and verifying bcrypt ones until a
//! login replaces them with argon2id.
//!
//! The range keeps imported accounts from standing out or standing in the
//! way: too weak a hash would be cracked offline if the table leaked, and
//! too costly a one would let a few wrong logins fill the hashing threads.
//! Within it, no verification costs much more than a bcrypt of cost 12, and
//! a failed one is answered no sooner than the failure floor (see
//! [`crate::password`]), so timing does not tell imported accounts apart.

use argon2::{Params, password_hash::phc::PasswordHash};

/// bcrypt costs accepted: from OWASP's least (10) to the default of many
/// frameworks (12).
pub const MIN_BCRYPT_COST: u32 = 10;
pub const MAX_BCRYPT_COST: u32 = 12;

/// The least argon2 memory accepted: OWASP's smallest recommended (7 MiB);
/// less is cheap to attack with GPUs whatever the passes.
pub const MIN_ARGON2_MEMORY_KIB: u32 = 7 * 1024;
/// The least memory × passes accepted (KiB): OWASP's recommended
/// configurations each reach it (7 MiB × 5, 9 MiB × 4, 12 MiB × 3,
/// 19 MiB × 2 as our own hashes, 46 MiB × 1).
pub const MIN_ARGON2_WORK_KIB: u64 = 7 * 1024 * 5;
/// The most argon2 memory accepted: a verification allocates it on a
/// hashing thread, which keeps it until it is idle.
pub const MAX_ARGON2_MEMORY_KIB: u32 = 64 * 1024;
pub const MAX_ARGON2_ITERATIONS: u32 = 10;
pub const MAX_ARGON2_PARALLELISM: u32 = 8;
/// The most memory × passes accepted (KiB): 64 MiB × 4 (PHP's default),
/// about half a bcrypt-12's time on a server core, so that no accepted
/// argon2 hash costs more than the costliest bcrypt on any usual hardware.
pub const MAX_ARGON2_WORK_KIB: u64 = 64 * 1024 * 4;

/// bcrypt keys on the first 72 bytes of a password: a longer one is only
/// partly checked.
pub const BCRYPT_KEY_BYTES: usize = 72;

/// Whether `stored` is a bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
pub fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
}

/// Checks that `hash` is a bcrypt hash or an argon2 PHC string the service
/// can verify, with parameters in the accepted range; the reason otherwise.
pub fn validate(hash: &str) -> Result<(), String> {
    if hash.is_empty() {
        return Err("is required".into());
    }
    if is_bcrypt(hash) {
        let parts: bcrypt::HashParts = hash
            .parse()
            .map_err(|e| format!("is not a valid bcrypt hash: {e}"))?;
        let cost = parts.get_cost();
        if !(MIN_BCRYPT_COST..=MAX_BCRYPT_COST).contains(&cost) {
            return Err(format!(
                "has bcrypt cost {cost}; accepted: {MIN_BCRYPT_COST} to {MAX_BCRYPT_COST}"
            ));
        }
        return Ok(());
    }
    if hash.starts_with("$argon2") {
        let parsed = PasswordHash::new(hash)
            .map_err(|e| format!("is not a valid argon2 PHC string: {e}"))?;
        argon2::Algorithm::try_from(parsed.algorithm.as_str())
            .map_err(|e| format!("names an unknown argon2 variant: {e}"))?;
        let params =
            Params::try_from(&parsed).map_err(|e| format!("has invalid argon2 parameters: {e}"))?;
        if parsed.salt.is_none() || parsed.hash.is_none() {
            return Err("is an argon2 PHC string without salt or hash".into());
        }
        return argon2_in_range(&params);
    }
    Err("must be a bcrypt hash ($2a$, $2b$, $2y$) or an argon2 PHC string ($argon2id$…)".into())
}

/// Every argon2 parameter outside the accepted range, named as in the PHC
/// string (m, t, p).
fn argon2_in_range(params: &Params) -> Result<(), String> {
    let (m, t, p) = (params.m_cost(), params.t_cost(), params.p_cost());
    let work = u64::from(m) * u64::from(t);
    let mut out = Vec::new();
    if !(MIN_ARGON2_MEMORY_KIB..=MAX_ARGON2_MEMORY_KIB).contains(&m) {
        out.push(format!(
            "argon2 memory m={m} KiB; accepted: {MIN_ARGON2_MEMORY_KIB} to {MAX_ARGON2_MEMORY_KIB}"
        ));
    }
    if t > MAX_ARGON2_ITERATIONS {
        out.push(format!(
            "argon2 passes t={t}; accepted: at most {MAX_ARGON2_ITERATIONS}"
        ));
    }
    if p > MAX_ARGON2_PARALLELISM {
        out.push(format!(
            "argon2 lanes p={p}; accepted: at most {MAX_ARGON2_PARALLELISM}"
        ));
    }
    if !(MIN_ARGON2_WORK_KIB..=MAX_ARGON2_WORK_KIB).contains(&work) {
        out.push(format!(
            "argon2 memory × passes m×t={work} KiB; accepted: {MIN_ARGON2_WORK_KIB} to {MAX_ARGON2_WORK_KIB}"
        ));
    }
    if out.is_empty() {
        Ok(())
    } else {
        Err(format!("has {}", out.join(", ")))
    }
}

/// The costliest argon2 parameters accepted (most memory, passes up to the
/// work bound, most lanes): what the failure floor is measured at.
pub fn costliest_argon2() -> Params {
    let passes = (MAX_ARGON2_WORK_KIB / u64::from(MAX_ARGON2_MEMORY_KIB)) as u32;
    Params::new(
        MAX_ARGON2_MEMORY_KIB,
        passes.min(MAX_ARGON2_ITERATIONS),
        MAX_ARGON2_PARALLELISM,
        None,
    )
    // Constants that argon2 accepts (tested); its default otherwise.
    .unwrap_or_default()
}

/// Verifies `password` against `stored` if it is a bcrypt hash (`None` if
/// it is not one). Blocking: call it on the hashing pool. Like every bcrypt,
/// only the first 72 bytes of the password count.
pub fn verify_bcrypt(password: &[u8], stored: &str) -> Option<bool> {
    if !is_bcrypt(stored) {
        return None;
    }
    Some(bcrypt::verify(password, stored).unwrap_or_else(|e| {
        tracing::error!(error = %e, "a stored bcrypt hash cannot be checked");
        false
    }))
}

/// Whether bcrypt checked the whole of `password` (it keys on the first 72
/// bytes): only then may a right password replace the bcrypt hash, or a
/// long password's other tails would sign in for good and the owner's own
/// stop working.
pub fn checks_whole(password: &[u8]) -> bool {
    password.len() <= BCRYPT_KEY_BYTES
}

/// A verification at the costliest bcrypt accepted, for the failure floor:
/// bcrypt's verification is this hash and a comparison. Blocking.
pub fn bcrypt_at_max_cost() {
    let _ = std::hint::black_box(bcrypt::hash_with_salt(
        std::hint::black_box(b"the failure floor"),
        MAX_BCRYPT_COST,
        [0; 16],
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed bcrypt string of `cost` (its salt and digest made up).
    fn bcrypt_of_cost(cost: u32) -> String {
        format!("$2b${cost:02}$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234")
    }

    fn argon2_of(m: u32, t: u32, p: u32) -> String {
        format!("$argon2id$v=19$m={m},t={t},p={p}$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA")
    }

    #[test]
    fn bcrypt_hashes_of_every_prefix_verify() {
        let hash = bcrypt::hash("correct horse", MIN_BCRYPT_COST).expect("hash");
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let stored = format!("{prefix}{}", &hash[4..]);
            assert_eq!(validate(&stored), Ok(()));
            assert_eq!(verify_bcrypt(b"correct horse", &stored), Some(true));
            assert_eq!(verify_bcrypt(b"correct horsf", &stored), Some(false));
        }
        assert_eq!(
            verify_bcrypt(b"x", "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA"),
            None
        );
    }

    #[test]
    fn invalid_hashes_are_refused_with_a_reason() {
        for bad in [
            "",
            "plain text",
            "$2b$10$short",
            "$argon2id$v=19$m=bad$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "$1$md5crypt$hash",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn bcrypt_costs_outside_10_to_12_are_refused_naming_the_cost() {
        for cost in [4, 9, 13, 16, 31] {
            let reason = validate(&bcrypt_of_cost(cost)).expect_err("out of range");
            assert!(
                reason.contains(&format!("bcrypt cost {cost}")) && reason.contains("10 to 12"),
                "{reason}"
            );
        }
        for cost in [10, 11, 12] {
            assert_eq!(validate(&bcrypt_of_cost(cost)), Ok(()), "cost {cost}");
        }
    }

    #[test]
    fn argon2_parameters_outside_the_range_are_refused_naming_them() {
        for (m, t, p, named) in [
            // Too little memory, whatever the passes.
            (4096, 10, 1, "m=4096"),
            // Enough memory, too little work (Spring's 16 MiB × 2).
            (16384, 2, 1, "m×t=32768"),
            (19456, 1, 1, "m×t=19456"),
            // Too much memory, passes, lanes or work.
            (131_072, 1, 1, "m=131072"),
            (8192, 11, 1, "t=11"),
            (19456, 2, 16, "p=16"),
            (65536, 5, 1, "m×t=327680"),
        ] {
            let reason = validate(&argon2_of(m, t, p)).expect_err("out of range");
            assert!(reason.contains(named), "{named}: {reason}");
        }
        // Our own parameters, OWASP's other recommendations, PHP's and
        // argon2-cffi's defaults, the costliest corner.
        for (m, t, p) in [
            (19456, 2, 1),
            (7168, 5, 1),
            (9216, 4, 1),
            (12288, 3, 1),
            (47104, 1, 1),
            (65536, 4, 1),
            (65536, 3, 4),
            (32768, 8, 8),
        ] {
            assert_eq!(validate(&argon2_of(m, t, p)), Ok(()), "m={m},t={t},p={p}");
        }
        let costliest = costliest_argon2();
        let phc = argon2_of(costliest.m_cost(), costliest.t_cost(), costliest.p_cost());
        assert_eq!(validate(&phc), Ok(()));
        assert_eq!(
            u64::from(costliest.m_cost()) * u64::from(costliest.t_cost()),
            MAX_ARGON2_WORK_KIB
        );
    }

    #[test]
    fn bcrypt_checks_72_bytes_of_a_password() {
        let long = "x".repeat(BCRYPT_KEY_BYTES) + "the owner's tail";
        let hash = bcrypt::hash(&long, MIN_BCRYPT_COST).expect("hash");
        let other_tail = "x".repeat(BCRYPT_KEY_BYTES) + "anything else";
        assert_eq!(verify_bcrypt(other_tail.as_bytes(), &hash), Some(true));
        assert!(!checks_whole(other_tail.as_bytes()));
        assert!(checks_whole("x".repeat(BCRYPT_KEY_BYTES).as_bytes()));
    }
}
