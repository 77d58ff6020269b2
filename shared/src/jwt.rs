//! Access tokens: the claims we issue, Ed25519 signing keys, and the strict
//! verification rules every service applies.

use base64::{Engine, engine::general_purpose::STANDARD};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The JOSE `typ` of our access tokens (RFC 9068), so that no other kind of
/// JWT signed with the same keys can be replayed as an access token.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Role names carried in the `roles` claim.
pub mod roles {
    pub const USER: &str = "user";
    pub const ADMIN: &str = "admin";
    /// Internal callers (e.g. the auth service calling the user service).
    pub const SERVICE: &str = "service";
}

/// The `aud` claim: one audience or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub aud: Audience,
    /// The user id, or a service's name for service tokens.
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// The session (refresh-token family) the token was issued for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Why a token was refused. Clients learn only "expired" or "invalid".
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("access token expired")]
    Expired,
    #[error("invalid access token: {0}")]
    Invalid(&'static str),
    #[error("invalid access token: {0}")]
    Rejected(#[source] jsonwebtoken::errors::Error),
}

/// Errors handling keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 private key in PKCS#8 PEM form")]
    BadPrivateKey,
    #[error("no secure random numbers available: {0}")]
    Random(String),
    #[error("not an Ed25519 public or private key in PEM form")]
    BadPublicKey,
    #[error("signing failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// The DER prefix of a PKCS#8 v1 Ed25519 private key; the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// An Ed25519 private key with its key id.
#[derive(Clone)]
pub struct SigningKey {
    kid: String,
    pkcs8_der: Vec<u8>,
    encoding: EncodingKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate(kid: impl Into<String>) -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| KeyError::Random(e.to_string()))?;
        let mut der = PKCS8_ED25519_PREFIX.to_vec();
        der.extend_from_slice(&seed);
        Ok(Self::from_der(kid.into(), der))
    }

    /// A key from its PKCS#8 PEM text (as `openssl genpkey -algorithm ed25519` writes).
    pub fn from_pkcs8_pem(kid: impl Into<String>, pem: &str) -> Result<Self, KeyError> {
        let der = pem_der(pem).ok_or(KeyError::BadPrivateKey)?;
        if der.len() != 48 || der[..16] != PKCS8_ED25519_PREFIX {
            return Err(KeyError::BadPrivateKey);
        }
        Ok(Self::from_der(kid.into(), der))
    }

    /// A key from PEM, named by its RFC 7638 thumbprint.
    pub fn from_pkcs8_pem_thumbprinted(pem: &str) -> Result<Self, KeyError> {
        let key = Self::from_pkcs8_pem("", pem)?;
        let mut jwk = Jwk::from_encoding_key(&key.encoding, Algorithm::EdDSA)?;
        jwk.common.key_algorithm = Some(KeyAlgorithm::EdDSA);
        Ok(Self {
            kid: thumbprint(&jwk)?,
            ..key
        })
    }

    /// A new random key, named by its thumbprint.
    pub fn generate_thumbprinted() -> Result<Self, KeyError> {
        Self::from_pkcs8_pem_thumbprinted(&Self::generate("")?.to_pkcs8_pem())
    }

    fn from_der(kid: String, pkcs8_der: Vec<u8>) -> Self {
        let encoding = EncodingKey::from_ed_der(&pkcs8_der);
        Self {
            kid,
            pkcs8_der,
            encoding,
        }
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The raw signing key, for callers that build their own JWS headers.
    pub fn encoding_key(&self) -> &EncodingKey {
        &self.encoding
    }

    /// The key as PKCS#8 PEM text, for storing it.
    pub fn to_pkcs8_pem(&self) -> String {
        let b64 = STANDARD.encode(&self.pkcs8_der);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(chunk));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        pem
    }

    /// The public half as a JWK (`kty` OKP, `crv` Ed25519, `alg` EdDSA, `use` sig).
    pub fn public_jwk(&self) -> Result<Jwk, KeyError> {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, Algorithm::EdDSA)?;
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(jwk)
    }

    /// Signs `claims` as an access token.
    pub fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The DER inside a PEM block (any label).
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    STANDARD.decode(body).ok()
}

/// The RFC 7638 thumbprint of a public JWK: a key id every replica derives
/// alike from the key itself, so no key id needs configuring.
pub fn thumbprint(jwk: &Jwk) -> Result<String, KeyError> {
    Ok(jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)?)
}

/// A verification-only public key from PEM: an Ed25519 public key
/// (`BEGIN PUBLIC KEY`) or a private key whose public half is wanted (an old
/// signing key kept for rotation). Its key id is its thumbprint.
pub fn public_jwk_from_pem(pem: &str) -> Result<Jwk, KeyError> {
    let der = pem_der(pem).ok_or(KeyError::BadPublicKey)?;
    if der.len() == 44 && der[..12] == SPKI_ED25519_PREFIX {
        let mut jwk = Jwk {
            common: jsonwebtoken::jwk::CommonParameters {
                key_algorithm: Some(KeyAlgorithm::EdDSA),
                public_key_use: Some(PublicKeyUse::Signature),
                ..Default::default()
            },
            algorithm: AlgorithmParameters::OctetKeyPair(
                jsonwebtoken::jwk::OctetKeyPairParameters {
                    key_type: jsonwebtoken::jwk::OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[12..]),
                },
            ),
        };
        jwk.common.key_id = Some(thumbprint(&jwk)?);
        return Ok(jwk);
    }
    SigningKey::from_pkcs8_pem_thumbprinted(pem)?.public_jwk()
}

/// A JWKS document holding the public halves of `keys`.
pub fn jwks_of(keys: &[SigningKey]) -> Result<JwkSet, KeyError> {
    Ok(JwkSet {
        keys: keys
            .iter()
            .map(SigningKey::public_jwk)
            .collect::<Result<_, _>>()?,
    })
}

/// The public keys a verifier trusts, by key id. Only Ed25519 keys with a
/// `kid` are kept; anything else in a JWKS document is ignored.
#[derive(Clone, Default)]
pub struct KeySet {
    keys: HashMap<String, DecodingKey>,
}

impl KeySet {
    pub fn from_jwks(jwks: &JwkSet) -> Self {
        let keys = jwks
            .keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let AlgorithmParameters::OctetKeyPair(okp) = &jwk.algorithm else {
                    return None;
                };
                if okp.curve != EllipticCurve::Ed25519 {
                    return None;
                }
                if matches!(jwk.common.key_algorithm, Some(alg) if alg != KeyAlgorithm::EdDSA) {
                    return None;
                }
                DecodingKey::from_jwk(jwk).ok().map(|key| (kid, key))
            })
            .collect();
        Self { keys }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.keys.get(kid)
    }
}

/// What a token must say to be accepted.
#[derive(Debug, Clone)]
pub struct TokenRules {
    pub issuer: String,
    /// Accepted audiences; the token must name at least one.
    pub audiences: Vec<String>,
    /// Allowed clock skew for `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(now: i64) -> Claims {
        Claims {
            iss: "iss".into(),
            aud: Audience::One("aud".into()),
            sub: "someone".into(),
            exp: now + 60,
            iat: now,
            nbf: now,
            jti: "j".into(),
            sid: None,
            roles: vec!["user".into()],
        }
    }

    fn rules() -> TokenRules {
        TokenRules {
            issuer: "iss".into(),
            audiences: vec!["aud".into()],
            leeway_secs: 0,
        }
    }

    #[test]
    fn a_key_survives_pem_and_its_jwks_verifies_its_tokens()
    -> Result<(), Box<dyn std::error::Error>> {
        let key = SigningKey::generate("k1")?;
        let again = SigningKey::from_pkcs8_pem("k1", &key.to_pkcs8_pem())?;
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let token = again.sign(&claims(now))?;
        let keys = KeySet::from_jwks(&jwks_of(&[key])?);
        let header = inspect_header(&token)?;
        assert_eq!(header.kid, "k1");
        let key = keys.get("k1").ok_or("kid missing")?;
        assert_eq!(
            verify_with(&token, key, &rules().validation())?.sub,
            "someone"
        );
        let expired = again.sign(&Claims {
            exp: now - 10,
            ..claims(now)
        })?;
        assert!(matches!(
            verify_with(&expired, key, &rules().validation()),
            Err(TokenError::Expired)
        ));
        Ok(())
    }

    #[test]
    fn thumbprinted_keys_agree_between_private_and_public_pem()
    -> Result<(), Box<dyn std::error::Error>> {
        let key = SigningKey::generate_thumbprinted()?;
        let from_private = public_jwk_from_pem(&key.to_pkcs8_pem())?;
        assert_eq!(from_private.common.key_id.as_deref(), Some(key.kid()));
        // The same key as a public PEM (SPKI) gets the same key id.
        let AlgorithmParameters::OctetKeyPair(okp) = &from_private.algorithm else {
            return Err("not OKP".into());
        };
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&okp.x)?;
        let mut spki = SPKI_ED25519_PREFIX.to_vec();
        spki.extend(raw);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            STANDARD.encode(spki)
        );
        assert_eq!(
            public_jwk_from_pem(&pem)?.common.key_id.as_deref(),
            Some(key.kid())
        );
        assert!(
            public_jwk_from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .is_err()
        );
        Ok(())
    }

    #[test]
    fn malformed_pem_is_refused() {
        assert!(SigningKey::from_pkcs8_pem("k", "not a pem").is_err());
        assert!(
            SigningKey::from_pkcs8_pem(
                "k",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            )
            .is_err()
        );
    }

    #[test]
    fn non_ed25519_keys_in_a_jwks_are_ignored() -> Result<(), Box<dyn std::error::Error>> {
        let jwks: JwkSet = serde_json::from_str(
            r#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hmac","alg":"HS256"},
                        {"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#,
        )?;
        // The HMAC key is not Ed25519; the OKP key has no kid.
        assert!(KeySet::from_jwks(&jwks).is_empty());
        Ok(())
    }
}
