//! Refresh tokens: 256 random bits, handed out once, stored only as a hash.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// A new refresh token and the hash to store for it.
pub fn new_token() -> Result<(String, String), getrandom::Error> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw)?;
    let token = URL_SAFE_NO_PAD.encode(raw);
    let hash = hash(&token);
    Ok((token, hash))
}

/// The stored form of a token. A plain SHA-256 suffices: the token is 256
/// random bits, so there is nothing to brute-force (unlike a password).
pub fn hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` has the shape of one of ours (43 base64url characters);
/// anything else is refused before touching the database.
pub fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_well_formed_and_hashed() -> Result<(), getrandom::Error> {
        let (a, ha) = new_token()?;
        let (b, hb) = new_token()?;
        assert_ne!(a, b);
        assert!(well_formed(&a) && well_formed(&b));
        assert_eq!(hash(&a), ha);
        assert_ne!(ha, hb);
        assert!(!ha.contains(&a));
        assert!(
            !well_formed("short") && !well_formed(&"a".repeat(44)) && !well_formed(&"+".repeat(43))
        );
        Ok(())
    }
}
