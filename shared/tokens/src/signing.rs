//! The signing half (feature `signing`, the auth service's): Ed25519 private
//! keys, access tokens signed with them, and their public halves as JWKs;
//! the RSA and P-256 keys that sign ID tokens ([`IdTokenKey`]).

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
        pem_of("PRIVATE KEY", &self.pkcs8_der)
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

impl SigningKey {
    /// Signs any claims with JOSE `typ` `typ` (an EdDSA ID token is `JWT`).
    pub fn sign_as<T: serde::Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The algorithm of an [`IdTokenKey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256 on an RSA-2048 key: what OpenID
    /// Connect requires every provider to offer.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
}

impl IdTokenAlg {
    fn algorithm(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
        }
    }
}

/// A private key that signs ID tokens (RS256 or ES256), named by its RFC
/// 7638 thumbprint. Never signs access tokens: the verifiers take only
/// Ed25519 for those.
#[derive(Clone)]
pub struct IdTokenKey {
    kid: String,
    alg: IdTokenAlg,
    pem: String,
    encoding: EncodingKey,
}

impl std::fmt::Debug for IdTokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdTokenKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl IdTokenKey {
    /// A new random key: RSA-2048 or P-256. RSA generation takes a while
    /// (tens to hundreds of milliseconds): call it off the async threads.
    pub fn generate(alg: IdTokenAlg) -> Result<Self, KeyError> {
        use aws_lc_rs::encoding::AsDer;
        let random = |_| KeyError::Random("key generation failed".into());
        let der = match alg {
            IdTokenAlg::Rs256 => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(random)?;
                let der: aws_lc_rs::encoding::Pkcs8V1Der<'_> = pair.as_der().map_err(random)?;
                der.as_ref().to_vec()
            }
            IdTokenAlg::Es256 => {
                let pair = aws_lc_rs::signature::EcdsaKeyPair::generate(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                )
                .map_err(random)?;
                pair.to_pkcs8v1().map_err(random)?.as_ref().to_vec()
            }
        };
        Self::from_pem(alg, &pem_of("PRIVATE KEY", &der))
    }

    /// A key from its PEM text: PKCS#8 (`BEGIN PRIVATE KEY`); for RSA also
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`), for P-256 also SEC1 (`BEGIN EC
    /// PRIVATE KEY`, RFC 5915), which is what `openssl ecparam -genkey` and
    /// Helm's `genPrivateKey "ecdsa"` write. jsonwebtoken, and aws-lc-rs's
    /// signer behind it, take P-256 keys as PKCS#8 only, so a SEC1 key is
    /// converted here and kept as PKCS#8.
    pub fn from_pem(alg: IdTokenAlg, pem: &str) -> Result<Self, KeyError> {
        let pem = match (alg, pem_block(pem, SEC1_LABEL)) {
            (IdTokenAlg::Es256, Some(sec1)) => pem_of("PRIVATE KEY", &p256_sec1_to_pkcs8(&sec1)?),
            _ => pem.to_owned(),
        };
        let encoding = match alg {
            IdTokenAlg::Rs256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
            IdTokenAlg::Es256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        }
        .map_err(|_| KeyError::BadIdTokenKey)?;
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.algorithm())
            .map_err(|_| KeyError::BadIdTokenKey)?;
        jwk.common.key_algorithm = None;
        Ok(Self {
            kid: thumbprint(&jwk)?,
            alg,
            pem,
            encoding,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> IdTokenAlg {
        self.alg
    }

    /// The key as the PEM text it was read from or generated as (a SEC1
    /// key as PKCS#8).
    pub fn to_pem(&self) -> &str {
        &self.pem
    }

    /// The public half as a JWK, with `kid`, `alg` and `use: sig`.
    pub fn public_jwk(&self) -> Result<Jwk, KeyError> {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg.algorithm())?;
        jwk.common.key_id = Some(self.kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(jwk)
    }

    /// Signs `claims` with JOSE `typ` `typ`. RSA signing costs about a
    /// millisecond: call it off the async threads.
    pub fn sign_as<T: serde::Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg.algorithm());
        header.typ = Some(typ.to_owned());
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The PEM label of a SEC1 (RFC 5915) EC private key.
const SEC1_LABEL: &str = "EC PRIVATE KEY";

/// The DER of the first PEM block labelled `label` in `pem`, if any. Only that
/// block: `openssl ecparam -genkey` writes an `EC PARAMETERS` block before
/// the key.
fn pem_block(pem: &str, label: &str) -> Option<Vec<u8>> {
    let (begin, end) = (
        format!("-----BEGIN {label}-----"),
        format!("-----END {label}-----"),
    );
    let body: String = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| *l != begin)
        .skip(1)
        .take_while(|l| *l != end)
        .collect();
    if body.is_empty() {
        return None;
    }
    STANDARD.decode(body).ok()
}

/// A P-256 private key in SEC1 DER as PKCS#8 v1 DER. Any other curve is
/// refused: ES256 is P-256 alone.
fn p256_sec1_to_pkcs8(sec1: &[u8]) -> Result<Vec<u8>, KeyError> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
    let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, sec1)
        .map_err(|_| KeyError::BadIdTokenKey)?;
    Ok(pair
        .to_pkcs8v1()
        .map_err(|_| KeyError::BadIdTokenKey)?
        .as_ref()
        .to_vec())
}

/// DER as PEM text with `label`.
fn pem_of(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(chunk));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
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
            amr: Vec::new(),
            auth_time: None,
            pat: false,
        }
    }

    fn rules() -> TokenRules {
        TokenRules {
            issuer: "iss".into(),
            audiences: vec!["aud".into()],
            leeway_secs: 0,
            admins_need_second_factor: false,
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

    #[test]
    fn id_token_keys_sign_what_their_published_jwk_verifies()
    -> Result<(), Box<dyn std::error::Error>> {
        for (alg, jose) in [
            (IdTokenAlg::Rs256, Algorithm::RS256),
            (IdTokenAlg::Es256, Algorithm::ES256),
        ] {
            let key = IdTokenKey::generate(alg)?;
            let again = IdTokenKey::from_pem(alg, key.to_pem())?;
            assert_eq!(key.kid(), again.kid());
            let now = jsonwebtoken::get_current_timestamp() as i64;
            let token = again.sign_as("JWT", &claims(now))?;
            let jwk = key.public_jwk()?;
            assert_eq!(jwk.common.key_id.as_deref(), Some(key.kid()));
            assert_eq!(jwk.common.public_key_use, Some(PublicKeyUse::Signature));
            let header = jsonwebtoken::decode_header(&token)?;
            assert_eq!((header.alg, header.typ.as_deref()), (jose, Some("JWT")));
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk)?;
            let mut validation = jsonwebtoken::Validation::new(jose);
            validation.set_audience(&["aud"]);
            let got = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation)?;
            assert_eq!(got.claims.sub, "someone");
            // Never an access-token key.
            assert!(KeySet::from_jwks(&JwkSet { keys: vec![jwk] }).is_empty());
        }
        assert!(IdTokenKey::from_pem(IdTokenAlg::Rs256, "not a pem").is_err());
        Ok(())
    }

    /// A P-256 key as SEC1 (`openssl ecparam -name prime256v1 -genkey
    /// -noout`), and the same key as PKCS#8 (`openssl pkey`). A test key, not
    /// a secret.
    const P256_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIOrQC8X/vBtxijZwAuveYFiESlJX28qTRGOYMKXjuOlkoAoGCCqGSM49
AwEHoUQDQgAEt7Gv284MEgl4k0SKdCtzFKoKhZzH1eYKzQ1fOK4rp9dB9fJGL6OH
vijuwg2vh369XJKg5NTQd/Cq/aOBgWXKYQ==
-----END EC PRIVATE KEY-----
";
    const P256_PKCS8: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg6tALxf+8G3GKNnAC
695gWIRKUlfbypNEY5gwpeO46WShRANCAAS3sa/bzgwSCXiTRIp0K3MUqgqFnMfV
5grNDV84riun10H18kYvo4e+KO7CDa+Hfr1ckqDk1NB38Kr9o4GBZcph
-----END PRIVATE KEY-----
";
    /// A P-384 key as SEC1 (`openssl ecparam -name secp384r1 -genkey -noout`).
    const P384_SEC1: &str = "-----BEGIN EC PRIVATE KEY-----
MIGkAgEBBDBa2lC58yWExVoZGkV3w5nfqoD43qeaifCMvrYdwF0dGpnI3l3ab8EA
fvr7Am+zDligBwYFK4EEACKhZANiAATkajerL+SdwwgPeX+XgzL9W0Vvu2UDJw+S
KSwIFpF+trbql/La29xA8sXOE3EaT2YPfeUPbWIKn0d0DCrHWI3v8CmBEuJKEDHb
VfaGdTsg7clfAAJuG1GymPI4Hwa73+8=
-----END EC PRIVATE KEY-----
";

    #[test]
    fn a_sec1_p256_key_signs_es256_as_its_pkcs8_form_does() -> Result<(), Box<dyn std::error::Error>>
    {
        let pkcs8 = IdTokenKey::from_pem(IdTokenAlg::Es256, P256_PKCS8)?;
        // As openssl writes it with -noout, and with the EC PARAMETERS block
        // it writes before the key without -noout.
        let with_params = format!(
            "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n{P256_SEC1}"
        );
        for pem in [P256_SEC1, with_params.as_str()] {
            let key = IdTokenKey::from_pem(IdTokenAlg::Es256, pem)?;
            // The same key, so the same key id; kept (and written back) as PKCS#8.
            assert_eq!(key.kid(), pkcs8.kid());
            assert!(key.to_pem().starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert_eq!(
                IdTokenKey::from_pem(IdTokenAlg::Es256, key.to_pem())?.kid(),
                key.kid()
            );
            // It signs at sign time too (the signer parses the key then), and
            // its published JWK verifies the signature.
            let now = jsonwebtoken::get_current_timestamp() as i64;
            let token = key.sign_as("JWT", &claims(now))?;
            let decoding = jsonwebtoken::DecodingKey::from_jwk(&pkcs8.public_jwk()?)?;
            let mut validation = jsonwebtoken::Validation::new(Algorithm::ES256);
            validation.set_audience(&["aud"]);
            let got = jsonwebtoken::decode::<Claims>(&token, &decoding, &validation)?;
            assert_eq!(got.claims.sub, "someone");
        }
        // ES256 is P-256 alone; and a SEC1 key is no RSA key.
        assert!(IdTokenKey::from_pem(IdTokenAlg::Es256, P384_SEC1).is_err());
        assert!(IdTokenKey::from_pem(IdTokenAlg::Rs256, P256_SEC1).is_err());
        let broken = P256_SEC1.replace("MHcCAQEE", "MHcCAQEF");
        assert!(IdTokenKey::from_pem(IdTokenAlg::Es256, &broken).is_err());
        Ok(())
    }
}
