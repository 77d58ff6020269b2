//! The public keys a verifier trusts (Ed25519 only, by key id), their RFC
//! 7638 thumbprints, and the one conversion between a JWK and its proto.

use jsonwebtoken::{
    DecodingKey,
    jwk::{
        AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
        OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
    },
};
use std::collections::HashMap;
use suite_proto::auth::Jwk as ProtoJwk;

/// Errors handling keys.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("not an Ed25519 private key in PKCS#8 PEM form")]
    BadPrivateKey,
    #[error("no secure random numbers available: {0}")]
    Random(String),
    #[error("not an Ed25519 public or private key in PEM form")]
    BadPublicKey,
    #[error("not an RSA (2048 bits or more) or P-256 private key in PEM form")]
    BadIdTokenKey,
    #[error("signing failed: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32-byte key follows.
#[cfg(feature = "signing")]
pub(crate) const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The DER inside a PEM block (any label).
#[cfg(feature = "signing")]
pub(crate) fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----"))
        .collect();
    use base64::{Engine, engine::general_purpose::STANDARD};
    STANDARD.decode(body).ok()
}

/// The RFC 7638 thumbprint of a public JWK: a key id every replica derives
/// alike from the key itself, so no key id needs configuring.
pub fn thumbprint(jwk: &Jwk) -> Result<String, KeyError> {
    Ok(jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)?)
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

/// A public JWK as the auth service's `GetJwks` sends it: Ed25519 (access
/// tokens), RSA and P-256 (ID tokens); `None` for anything else.
pub fn jwk_to_proto(jwk: &Jwk) -> Option<ProtoJwk> {
    let common = ProtoJwk {
        kid: jwk.common.key_id.clone().unwrap_or_default(),
        alg: jwk
            .common
            .key_algorithm
            .map(|a| a.to_string())
            .unwrap_or_default(),
        r#use: match &jwk.common.public_key_use {
            Some(PublicKeyUse::Signature) => "sig".into(),
            Some(PublicKeyUse::Encryption) => "enc".into(),
            Some(PublicKeyUse::Other(other)) => other.clone(),
            None => String::new(),
        },
        ..ProtoJwk::default()
    };
    match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
            Some(ProtoJwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: okp.x.clone(),
                ..common
            })
        }
        AlgorithmParameters::RSA(rsa) => Some(ProtoJwk {
            kty: "RSA".into(),
            n: rsa.n.clone(),
            e: rsa.e.clone(),
            ..common
        }),
        AlgorithmParameters::EllipticCurve(ec) if ec.curve == EllipticCurve::P256 => {
            Some(ProtoJwk {
                kty: "EC".into(),
                crv: "P-256".into(),
                x: ec.x.clone(),
                y: ec.y.clone(),
                ..common
            })
        }
        _ => None,
    }
}

/// Every key of a `GetJwks` reply (Ed25519, RSA, P-256), as a JWKS document
/// to publish to relying parties, which check ID tokens with them. Not for
/// verifying access tokens: [`jwks_from_proto`] is.
pub fn public_jwks_from_proto(keys: &[ProtoJwk]) -> JwkSet {
    use jsonwebtoken::jwk::{
        EllipticCurveKeyParameters, EllipticCurveKeyType, RSAKeyParameters, RSAKeyType,
    };
    let keys = keys
        .iter()
        .filter_map(|k| {
            let algorithm = match (k.kty.as_str(), k.crv.as_str()) {
                ("OKP", "Ed25519") => return jwks_from_proto(std::slice::from_ref(k)).keys.pop(),
                ("RSA", _) => AlgorithmParameters::RSA(RSAKeyParameters {
                    key_type: RSAKeyType::RSA,
                    n: k.n.clone(),
                    e: k.e.clone(),
                }),
                ("EC", "P-256") => AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                    key_type: EllipticCurveKeyType::EC,
                    curve: EllipticCurve::P256,
                    x: k.x.clone(),
                    y: k.y.clone(),
                }),
                _ => return None,
            };
            Some(Jwk {
                common: CommonParameters {
                    key_id: (!k.kid.is_empty()).then(|| k.kid.clone()),
                    key_algorithm: match k.alg.as_str() {
                        "" => None,
                        alg => Some(alg.parse::<KeyAlgorithm>().ok()?),
                    },
                    public_key_use: (k.r#use == "sig").then_some(PublicKeyUse::Signature),
                    ..Default::default()
                },
                algorithm,
            })
        })
        .collect();
    JwkSet { keys }
}

/// The JWKS a `GetJwks` reply holds: its Ed25519 keys (others are dropped,
/// as [`KeySet`] would drop them).
pub fn jwks_from_proto(keys: &[ProtoJwk]) -> JwkSet {
    let keys = keys
        .iter()
        .filter(|k| k.kty == "OKP" && k.crv == "Ed25519")
        .filter_map(|k| {
            let key_algorithm = match k.alg.as_str() {
                "" => None,
                alg => Some(alg.parse::<KeyAlgorithm>().ok()?),
            };
            let public_key_use = match k.r#use.as_str() {
                "" => None,
                "sig" => Some(PublicKeyUse::Signature),
                "enc" => Some(PublicKeyUse::Encryption),
                other => Some(PublicKeyUse::Other(other.to_owned())),
            };
            Some(Jwk {
                common: CommonParameters {
                    key_id: (!k.kid.is_empty()).then(|| k.kid.clone()),
                    key_algorithm,
                    public_key_use,
                    ..Default::default()
                },
                algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
                    key_type: OctetKeyPairType::OctetKeyPair,
                    curve: EllipticCurve::Ed25519,
                    x: k.x.clone(),
                }),
            })
        })
        .collect();
    JwkSet { keys }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proto(kty: &str, crv: &str, kid: &str) -> ProtoJwk {
        ProtoJwk {
            kty: kty.into(),
            crv: crv.into(),
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
            kid: kid.into(),
            alg: "EdDSA".into(),
            r#use: "sig".into(),
            ..ProtoJwk::default()
        }
    }

    #[test]
    fn a_jwk_goes_to_its_proto_and_back_unchanged() {
        let sent = vec![proto("OKP", "Ed25519", "k1")];
        let jwks = jwks_from_proto(&sent);
        assert_eq!(KeySet::from_jwks(&jwks).len(), 1);
        let back: Vec<ProtoJwk> = jwks.keys.iter().filter_map(jwk_to_proto).collect();
        assert_eq!(back, sent);
    }

    #[test]
    fn keys_that_are_not_ed25519_are_dropped_on_the_way_in() {
        let jwks = jwks_from_proto(&[
            proto("RSA", "", "rsa"),
            proto("OKP", "X25519", "x"),
            ProtoJwk {
                alg: "HS256".into(),
                ..proto("OKP", "Ed25519", "hmac")
            },
        ]);
        assert!(KeySet::from_jwks(&jwks).is_empty());
    }

    #[test]
    fn rsa_and_ec_keys_are_published_but_never_trusted_for_access_tokens() {
        let rsa = ProtoJwk {
            kty: "RSA".into(),
            n: "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw".into(),
            e: "AQAB".into(),
            kid: "rsa".into(),
            alg: "RS256".into(),
            r#use: "sig".into(),
            ..ProtoJwk::default()
        };
        let ec = ProtoJwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".into(),
            y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into(),
            kid: "ec".into(),
            alg: "ES256".into(),
            r#use: "sig".into(),
            ..ProtoJwk::default()
        };
        let sent = vec![proto("OKP", "Ed25519", "ed"), rsa, ec];
        let published = public_jwks_from_proto(&sent);
        assert_eq!(published.keys.len(), 3);
        let back: Vec<ProtoJwk> = published.keys.iter().filter_map(jwk_to_proto).collect();
        assert_eq!(back, sent);
        // The access-token verifiers see the Ed25519 key alone.
        let trusted = KeySet::from_jwks(&jwks_from_proto(&sent));
        assert_eq!(trusted.len(), 1);
        assert!(trusted.get("ed").is_some());
        assert!(KeySet::from_jwks(&published).get("rsa").is_none());
        assert!(KeySet::from_jwks(&published).get("ec").is_none());
    }
}
