//! The signing half (feature `signing`, the auth service's): Ed25519 private
//! keys, access tokens signed with them, and their public halves as JWKs.

use crate::{
    claims::{ACCESS_TOKEN_TYPE, Claims},
    keys::{KeyError, SPKI_ED25519_PREFIX, pem_der, thumbprint},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use jsonwebtoken::{
    Algorithm, EncodingKey, Header,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse},
};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        claims::{Audience, TokenError},
        keys::KeySet,
        rules::{TokenRules, inspect_header, verify_with},
    };

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
            client_id: None,
            scope: None,
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
