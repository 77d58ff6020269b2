//! Second factors' secrets and codes: TOTP (RFC 6238, with totp-rs) and its
//! enrolment URI and QR code, the sealing of TOTP secrets at rest with the
//! configured key, and recovery codes.
//!
//! What the key protects: a copy of the database (a backup, a replica, a
//! read through SQL injection) does not give away the TOTP secrets, and a
//! sealed secret moved to another user's or factor's row does not open
//! (the user and factor ids are its associated data). What it does not: a
//! process holding the key (the user service) can open every secret, and
//! recovery codes are hashes, not sealed (random, 80 bits: a hash suffices).

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

/// The kind of a TOTP factor, as stored and shown.
pub const TOTP_KIND: &str = "totp";
/// The kind of a passkey factor.
pub const PASSKEY_KIND: &str = "passkey";
/// A TOTP time step, in seconds (what authenticator apps assume).
pub const STEP_SECS: i64 = 30;
/// Digits of a TOTP code.
const DIGITS: usize = 6;
/// Bytes of a TOTP secret: 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// How many recovery codes a user gets.
pub const RECOVERY_CODES: usize = 10;
/// The alphabet of recovery codes: no 0/O, 1/I/L confusion (Crockford's).
const CODE_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters of a recovery code (16 × 5 bits = 80 bits), shown in groups of 4.
const CODE_CHARS: usize = 16;
/// The sealed format's version byte (a new key or cipher gets a new one).
const SEALED_V1: u8 = 1;
const NONCE_BYTES: usize = 12;

/// The key that seals TOTP secrets (`FACTOR_KEY`). No `Debug`: it is a secret.
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("FACTOR_KEY must be 32 bytes, base64 (standard or URL-safe): {0}")]
    BadKey(String),
    #[error("a sealed secret did not open (another key, or a changed row)")]
    Open,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(<redacted>)")
    }
}

impl Sealer {
    /// The key from its base64 text (32 bytes).
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        use base64::Engine;
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
            .map_err(|e| SealError::BadKey(e.to_string()))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| SealError::BadKey(format!("{} bytes", b.len())))?;
        Ok(Self::from_bytes(&key))
    }

    pub fn from_bytes(key: &[u8; 32]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(key.into()),
        }
    }

    /// `secret` sealed for factor `factor` of `user`.
    pub fn seal(&self, user: Uuid, factor: Uuid, secret: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut nonce = [0u8; NONCE_BYTES];
        crate::password::fill_random(&mut nonce);
        let aad = associated(user, factor);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Open)?;
        let mut out = Vec::with_capacity(1 + NONCE_BYTES + sealed.len());
        out.push(SEALED_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// What [`Self::seal`] sealed for the same user and factor.
    pub fn open(&self, user: Uuid, factor: Uuid, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some((&SEALED_V1, rest)) = sealed.split_first() else {
            return Err(SealError::Open);
        };
        if rest.len() < NONCE_BYTES {
            return Err(SealError::Open);
        }
        let (nonce, body) = rest.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().map_err(|_| SealError::Open)?;
        let aad = associated(user, factor);
        self.cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Open)
    }
}

fn associated(user: Uuid, factor: Uuid) -> [u8; 32] {
    let mut aad = [0u8; 32];
    aad[..16].copy_from_slice(user.as_bytes());
    aad[16..].copy_from_slice(factor.as_bytes());
    aad
}

/// A fresh TOTP secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    crate::password::fill_random(&mut secret);
    secret
}

/// The TOTP of `secret`, labelled for `account` at `issuer`.
fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> TOTP {
    // The label's parts may not hold ':' (it separates them).
    let clean = |s: &str| s.replace(':', " ");
    TOTP::new_unchecked(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECS as u64,
        secret,
        Some(clean(issuer)),
        clean(account),
    )
}

/// What enrolment shows: the secret in base32, the `otpauth://` URI and
/// its QR code (SVG).
pub struct Enrolment {
    pub secret_base32: String,
    pub uri: String,
    pub qr_svg: String,
}

pub fn enrolment(secret: &[u8], issuer: &str, account: &str) -> Enrolment {
    let t = totp(secret.to_vec(), issuer, account);
    let uri = t.get_url();
    let qr_svg = match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
        // A URI too long for a QR code: only the typed secret works.
        Err(_) => String::new(),
    };
    Enrolment {
        secret_base32: t.get_secret_base32(),
        uri,
        qr_svg,
    }
}

/// The time step `unix_secs` falls in.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// The time step among the one of `now` and its neighbours (one step of
/// clock skew each way) whose code `code` is, compared in constant time;
/// `None` if none.
pub fn matching_step(secret: &[u8], code: &str, now_unix: i64) -> Option<i64> {
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret.to_vec(), "", "");
    let now = step_at(now_unix);
    let mut found = None;
    // Every candidate is computed and compared, whichever matches.
    for step in [now - 1, now, now + 1] {
        let Ok(at) = u64::try_from(step * STEP_SECS) else {
            continue;
        };
        let expected = t.generate(at);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// Ten new recovery codes, as shown (`xxxx-xxxx-xxxx-xxxx`).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut raw = [0u8; CODE_CHARS];
            crate::password::fill_random(&mut raw);
            let chars: Vec<char> = raw
                .iter()
                .map(|b| char::from(CODE_ALPHABET[usize::from(b & 31)]))
                .collect();
            chars
                .chunks(4)
                .map(|c| c.iter().collect::<String>())
                .collect::<Vec<_>>()
                .join("-")
        })
        .collect()
}

/// A recovery code as typed, in its canonical form (lower case, no
/// separators or spaces, Crockford's look-alikes mapped), if it can be one.
pub fn canonical_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_CHARS);
    for c in typed.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'o' => '0',
            'i' | 'l' => '1',
            c => c,
        };
        if !CODE_ALPHABET.contains(&(c as u8)) || !c.is_ascii() {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_CHARS).then_some(out)
}

/// What is stored of a recovery code of `user` (its canonical form).
pub fn code_hash(user: Uuid, canonical: &str) -> Vec<u8> {
    Sha256::new()
        .chain_update(b"suite recovery code\0")
        .chain_update(user.as_bytes())
        .chain_update(canonical.as_bytes())
        .finalize()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_and_factor_and_key() {
        let sealer = Sealer::from_bytes(&[7; 32]);
        let (user, factor) = (Uuid::now_v7(), Uuid::now_v7());
        let sealed = sealer.seal(user, factor, b"secret").expect("sealed");
        assert_ne!(&sealed[1 + NONCE_BYTES..], b"secret");
        assert_eq!(
            sealer.open(user, factor, &sealed).expect("opened"),
            b"secret"
        );
        assert!(sealer.open(Uuid::now_v7(), factor, &sealed).is_err());
        assert!(sealer.open(user, Uuid::now_v7(), &sealed).is_err());
        assert!(
            Sealer::from_bytes(&[8; 32])
                .open(user, factor, &sealed)
                .is_err()
        );
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert!(sealer.open(user, factor, &tampered).is_err());
        assert!(sealer.open(user, factor, &[]).is_err());
        assert!(sealer.open(user, factor, &[SEALED_V1, 1, 2]).is_err());
    }

    #[test]
    fn the_key_is_32_bytes_of_base64() {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.encode([1u8; 32]);
        assert!(Sealer::from_base64(&key).is_ok());
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfbu8; 32]);
        assert!(Sealer::from_base64(&url).is_ok());
        let short = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        assert!(Sealer::from_base64(&short).is_err());
        assert!(Sealer::from_base64("not base64!").is_err());
    }

    #[test]
    fn codes_match_their_step_with_one_step_of_skew() {
        // RFC 6238's SHA-1 test vector: 59 s gives 94287082 (8 digits);
        // its last six digits are the 6-digit code.
        let secret = b"12345678901234567890";
        assert_eq!(matching_step(secret, "287082", 59), Some(1));
        assert_eq!(matching_step(secret, "287082", 59 + 30), Some(1));
        assert_eq!(matching_step(secret, "287082", 59 - 30), Some(1));
        assert_eq!(matching_step(secret, "287082", 59 + 60), None);
        assert_eq!(matching_step(secret, "287083", 59), None);
        assert_eq!(matching_step(secret, "28708", 59), None);
        assert_eq!(matching_step(secret, "28708a", 59), None);
        assert_eq!(matching_step(secret, "2870822", 59), None);
    }

    #[test]
    fn recovery_codes_are_random_and_typed_loosely() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        for c in &codes {
            assert_eq!(c.len(), 19, "{c}");
            let canonical = canonical_code(c).expect("canonical");
            assert_eq!(canonical_code(&c.to_uppercase()), Some(canonical.clone()));
            assert_eq!(canonical_code(&c.replace('-', " ")), Some(canonical));
        }
        assert_eq!(
            canonical_code("OIL0-aaaa-bbbb-cccc").as_deref(),
            Some("0110aaaabbbbcccc")
        );
        assert_eq!(canonical_code("aaaa-bbbb-cccc"), None);
        assert_eq!(canonical_code("aaaa-bbbb-cccc-dddu"), None);
        assert_eq!(canonical_code("ääää-bbbb-cccc-dddd"), None);
        let user = Uuid::now_v7();
        assert_eq!(code_hash(user, "a"), code_hash(user, "a"));
        assert_ne!(code_hash(user, "a"), code_hash(Uuid::now_v7(), "a"));
    }

    #[test]
    fn enrolment_gives_a_uri_and_a_qr_code() {
        let e = enrolment(&new_secret(), "Suite: Test", "alice");
        assert!(e.uri.starts_with("otpauth://totp/"), "{}", e.uri);
        assert!(e.uri.contains(&format!("secret={}", e.secret_base32)));
        assert!(e.uri.contains("issuer=Suite%20%20Test"), "{}", e.uri);
        assert!(e.qr_svg.starts_with("<?xml") || e.qr_svg.starts_with("<svg"));
        assert_eq!(e.secret_base32.len(), 32);
    }
}
