//! The form of personal access tokens: `suitepat_`, 32 random characters
//! (base62, about 190 bits) and a 6-character checksum (CRC32 of what comes
//! before it, base62). The prefix lets secret scanners spot a leaked token
//! (`suitepat_[0-9A-Za-z]{38}`, as GitHub's `ghp_` tokens), and the
//! checksum lets every verifier refuse a mistyped or made-up one without a
//! look-up. The checksum is no secret: whatever passes it is still looked
//! up by its hash, and only a token the auth service issued is found.

/// What every personal access token begins with.
pub const PREFIX: &str = "suitepat_";
/// Random characters after the prefix.
const RANDOM_CHARS: usize = 32;
/// Checksum characters at the end.
const CHECK_CHARS: usize = 6;
/// The length of every personal access token.
pub const LEN: usize = PREFIX.len() + RANDOM_CHARS + CHECK_CHARS;
/// How much of a token is shown in lists: the prefix and four characters.
pub const SHOWN_CHARS: usize = PREFIX.len() + 4;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether `token` is meant as a personal access token (not a JWT): it
/// begins with the prefix. Whether it is well formed is [`check`]'s.
pub fn is_personal(token: &str) -> bool {
    token.starts_with(PREFIX)
}

/// Whether `token` is well formed: the prefix, the length, base62 only and
/// a matching checksum.
pub fn check(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(PREFIX) else {
        return false;
    };
    if rest.len() != RANDOM_CHARS + CHECK_CHARS || !rest.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let (body, sum) = token.split_at(LEN - CHECK_CHARS);
    checksum(body).as_bytes() == sum.as_bytes()
}

/// The part of a token shown in lists and logs: enough to recognise it,
/// far too little to use it.
pub fn shown(token: &str) -> &str {
    token.get(..SHOWN_CHARS).unwrap_or(PREFIX)
}

/// CRC32 of `body`, as six base62 digits (62^6 > 2^32).
fn checksum(body: &str) -> String {
    let mut n = u64::from(crc32fast::hash(body.as_bytes()));
    let mut digits = [b'0'; CHECK_CHARS];
    for d in digits.iter_mut().rev() {
        // `n % 62` is below 62: always an index of the alphabet.
        *d = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// `body` (the prefix and the random characters) with its checksum: a
/// well-formed token, issued or not (tests forge unknown ones with it).
pub fn checksummed(body: &str) -> String {
    format!("{body}{}", checksum(body))
}

/// A new token from the system's random source.
#[cfg(feature = "signing")]
pub fn generate() -> Result<String, getrandom::Error> {
    let mut token = String::with_capacity(LEN);
    token.push_str(PREFIX);
    // Rejection sampling keeps every character uniform: bytes of 248 and
    // above (4 × 62) would favour the alphabet's first eight.
    let mut pool = [0u8; 64];
    while token.len() < PREFIX.len() + RANDOM_CHARS {
        getrandom::fill(&mut pool)?;
        for b in pool {
            if token.len() == PREFIX.len() + RANDOM_CHARS {
                break;
            }
            if b < 248 {
                token.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(checksummed(&token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate().expect("random");
        let b = generate().expect("random");
        assert_ne!(a, b);
        for t in [&a, &b] {
            assert_eq!(t.len(), LEN);
            assert!(is_personal(t) && check(t), "{t}");
            assert_eq!(shown(t).len(), SHOWN_CHARS);
            assert!(t.starts_with(shown(t)));
        }
    }

    #[test]
    fn a_typo_fails_the_checksum() {
        let token = generate().expect("random");
        let mut bytes = token.clone().into_bytes();
        // Change one random character to another base62 one.
        let i = PREFIX.len() + 5;
        bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
        let typo = String::from_utf8(bytes).expect("ascii");
        assert!(!check(&typo));
        // Swapped checksum characters, a missing or extra one, other alphabets.
        assert!(!check(&token[..LEN - 1]));
        assert!(!check(&format!("{token}0")));
        assert!(!check(&token.replacen(PREFIX, "suitepax_", 1)));
        assert!(!check(&format!("{PREFIX}{}", "-".repeat(38))));
        assert!(!check(""));
        assert!(!check("suitepat_é"));
    }

    #[test]
    fn the_checksum_is_crc32_in_base62() {
        // CRC32("") is 0: six zeros.
        assert_eq!(checksum(""), "000000");
        // CRC32("123456789") = 0xCBF43926 = 3421780262 (the standard check value).
        let mut n: u64 = 3_421_780_262;
        let mut expected = Vec::new();
        for _ in 0..6 {
            expected.push(ALPHABET[(n % 62) as usize]);
            n /= 62;
        }
        expected.reverse();
        assert_eq!(checksum("123456789").as_bytes(), expected.as_slice());
    }
}
