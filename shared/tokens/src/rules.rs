//! What a token must say to be accepted, and the checks applied before and
//! while its signature is verified.

use crate::claims::{ACCESS_TOKEN_TYPE, Claims, TokenError};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

/// What a token must say to be accepted.
#[derive(Debug, Clone)]
pub struct TokenRules {
    pub issuer: String,
    /// Accepted audiences; the token must name at least one.
    pub audiences: Vec<String>,
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// An admin's token acts as an admin only after a second factor.
    pub admins_need_second_factor: bool,
}

impl TokenRules {
    /// The rules in jsonwebtoken's form; build it once, not per token.
    pub fn validation(&self) -> Validation {
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&self.audiences);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        v.validate_nbf = true;
        v.leeway = self.leeway_secs;
        v
    }
}

/// The longest token even looked at.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// The parts of a token's header we look at before verifying it.
pub struct UnverifiedHeader {
    pub kid: String,
}

/// Checks the header's algorithm and type and returns its key id. Header
/// keys (`jwk`, `jku`, `x5u`, `x5c`) are never used: keys come from our own set only.
pub fn inspect_header(token: &str) -> Result<UnverifiedHeader, TokenError> {
    // Ours are well under 1 KiB; refusing big ones first bounds the work an
    // attacker can ask of the base64 and JSON decoders.
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Invalid("too long"));
    }
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid("malformed"))?;
    if header.alg != Algorithm::EdDSA {
        return Err(TokenError::Invalid("algorithm not allowed"));
    }
    let typ_ok = header.typ.as_deref().is_some_and(|t| {
        t.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE) || t.eq_ignore_ascii_case("application/at+jwt")
    });
    if !typ_ok {
        return Err(TokenError::Invalid("not an access token"));
    }
    let kid = header.kid.ok_or(TokenError::Invalid("no key id"))?;
    Ok(UnverifiedHeader { kid })
}

/// Verifies `token`'s signature with `key` and its claims against
/// `validation` (from [`TokenRules::validation`]).
pub fn verify_with(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Claims, TokenError> {
    match jsonwebtoken::decode::<Claims>(token, key, validation) {
        Ok(data) => Ok(data.claims),
        Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
            Err(TokenError::Expired)
        }
        Err(e) => Err(TokenError::Rejected(e)),
    }
}
