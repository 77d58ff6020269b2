//! Refresh tokens: 256 bits, handed out once, stored only as a hash. A
//! session's first is random; each next one is derived from the one it
//! replaces with the session's secret key, so every redemption of a token
//! (concurrent or retried, inside the grace window) gets the same successor
//! and a session never holds two live tokens. Without the key (it never
//! leaves the database) a retired token says nothing about its successor.

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

/// A new session's secret key for deriving successors.
pub fn new_successor_key() -> Result<Vec<u8>, getrandom::Error> {
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key)?;
    Ok(key)
}

/// The token that replaces `token` in the session keyed by `key`:
/// HMAC-SHA256(key, token), base64url like every token.
pub fn successor(key: &[u8], token: &str) -> Result<String, hmac::digest::InvalidLength> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<Sha256>::new_from_slice(key)?;
    mac.update(token.as_bytes());
    Ok(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
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

    #[test]
    fn successors_are_one_per_token_and_key() -> Result<(), Box<dyn std::error::Error>> {
        let (token, _) = new_token()?;
        let (k1, k2) = (new_successor_key()?, new_successor_key()?);
        let next = successor(&k1, &token)?;
        assert!(well_formed(&next));
        assert_eq!(next, successor(&k1, &token)?);
        assert_ne!(next, successor(&k2, &token)?);
        assert_ne!(next, successor(&k1, &next)?);
        Ok(())
    }
}
