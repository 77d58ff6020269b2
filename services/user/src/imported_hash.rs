//! Password hashes brought from other systems: checking that an imported
//! hash is one the service can verify (bcrypt, or an argon2 PHC string), and
//! verifying bcrypt ones until the first successful login replaces them
//! with argon2id.

use argon2::{Params, password_hash::phc::PasswordHash};

/// The costliest bcrypt hash accepted: every login would take this many
/// doublings of work (cost 16 is about 5 s on a server core).
const MAX_BCRYPT_COST: u32 = 16;
/// The costliest argon2 parameters accepted: a hash's memory is allocated
/// at every verification, and kept by the hashing pool.
const MAX_ARGON2_MEMORY_KIB: u32 = 256 * 1024;
const MAX_ARGON2_ITERATIONS: u32 = 16;
const MAX_ARGON2_PARALLELISM: u32 = 16;

/// Whether `stored` is a bcrypt hash (`$2a$`, `$2b$` or `$2y$`).
pub fn is_bcrypt(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|prefix| stored.starts_with(prefix))
}

/// Checks that `hash` is a bcrypt hash or an argon2 PHC string the service
/// can verify at a bearable cost; the reason otherwise.
pub fn validate(hash: &str) -> Result<(), String> {
    if hash.is_empty() {
        return Err("is required".into());
    }
    if is_bcrypt(hash) {
        let parts: bcrypt::HashParts = hash
            .parse()
            .map_err(|e| format!("is not a valid bcrypt hash: {e}"))?;
        if parts.get_cost() > MAX_BCRYPT_COST {
            return Err(format!(
                "has bcrypt cost {}, more than {MAX_BCRYPT_COST}",
                parts.get_cost()
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
        if params.m_cost() > MAX_ARGON2_MEMORY_KIB
            || params.t_cost() > MAX_ARGON2_ITERATIONS
            || params.p_cost() > MAX_ARGON2_PARALLELISM
        {
            return Err(format!(
                "has argon2 parameters above m={MAX_ARGON2_MEMORY_KIB},t={MAX_ARGON2_ITERATIONS},p={MAX_ARGON2_PARALLELISM}"
            ));
        }
        return Ok(());
    }
    Err("must be a bcrypt hash ($2a$, $2b$, $2y$) or an argon2 PHC string ($argon2id$…)".into())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bcrypt_hashes_of_every_prefix_verify() {
        let hash = bcrypt::hash("correct horse", 4).expect("hash");
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
    fn invalid_or_too_costly_hashes_are_refused_with_a_reason() {
        for bad in [
            "",
            "plain text",
            "$2b$10$short",
            "$2b$31$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz01234",
            "$argon2id$v=19$m=bad$c2FsdHNhbHQ$aGFzaGhhc2g",
            "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$1$md5crypt$hash",
        ] {
            assert!(validate(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            validate("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
            Ok(())
        );
    }
}
