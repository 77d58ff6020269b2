//! The signing keys: one active key that signs, and verification-only keys
//! (earlier active keys) that still verify during a rotation. Every replica
//! configured with the same keys issues tokens that verify everywhere; key ids
//! are RFC 7638 thumbprints, so they agree without configuration.

use crate::config::{Config, ConfigError};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use secrecy::ExposeSecret;
use std::path::Path;
use suite_tokens::{IdTokenAlg, IdTokenKey, SigningKey, public_jwk_from_pem};

/// The file a generated key is kept in, under `DATA_DIR`.
pub const GENERATED_KEY_FILE: &str = "auth-signing-key.pem";
/// The files generated ID-token keys are kept in, under `DATA_DIR`.
pub const GENERATED_RSA_KEY_FILE: &str = "oidc-rsa-key.pem";
pub const GENERATED_EC_KEY_FILE: &str = "oidc-ec-key.pem";

#[derive(Debug, Clone)]
pub struct KeyRing {
    active: SigningKey,
    verify_only: Vec<Jwk>,
    /// The keys that sign ID tokens (RS256 and ES256); EdDSA ID tokens use
    /// `active`.
    id_token: Vec<IdTokenKey>,
    /// Earlier ID-token keys, published (so ID tokens they signed keep
    /// verifying at relying parties and as `id_token_hint`) but never used
    /// to sign.
    id_token_retired: Vec<IdTokenKey>,
    /// The public keys, worked out once (an RSA key's public half is
    /// parsed out of the private key).
    published: std::sync::OnceLock<JwkSet>,
}

impl KeyRing {
    pub fn new(active: SigningKey, verify_only: Vec<Jwk>) -> Self {
        Self {
            active,
            verify_only,
            id_token: Vec::new(),
            id_token_retired: Vec::new(),
            published: std::sync::OnceLock::new(),
        }
    }

    /// The ring with the ID-token keys `keys` too.
    pub fn with_id_token_keys(mut self, keys: Vec<IdTokenKey>) -> Self {
        self.id_token = keys;
        self.published = std::sync::OnceLock::new();
        self
    }

    /// The ring with the earlier ID-token keys `keys`, published only.
    pub fn with_retired_id_token_keys(mut self, keys: Vec<IdTokenKey>) -> Self {
        self.id_token_retired = keys;
        self.published = std::sync::OnceLock::new();
        self
    }

    /// The key that signs ID tokens with `alg`, if there is one.
    pub fn id_token_key(&self, alg: IdTokenAlg) -> Option<&IdTokenKey> {
        self.id_token.iter().find(|k| k.alg() == alg)
    }

    /// The keys the configuration names; with none, a key generated once
    /// and kept in the data directory.
    pub fn load(config: &Config) -> Result<Self, ConfigError> {
        let bad = |variable: &'static str| {
            move |e: &dyn std::fmt::Display| ConfigError {
                variable,
                reason: e.to_string(),
            }
        };
        let active = if let Some(pem) = &config.signing_key {
            SigningKey::from_pkcs8_pem_thumbprinted(pem.expose_secret())
                .map_err(|e| bad("SIGNING_KEY")(&e))?
        } else if let Some(path) = &config.signing_key_file {
            let pem = read(path).map_err(|e| bad("SIGNING_KEY_FILE")(&e))?;
            SigningKey::from_pkcs8_pem_thumbprinted(&pem)
                .map_err(|e| bad("SIGNING_KEY_FILE")(&e))?
        } else {
            generated_key(&config.data_dir).map_err(|e| bad("DATA_DIR")(&e))?
        };
        let mut verify_only = Vec::new();
        for path in &config.verification_key_files {
            let pem = read(path).map_err(|e| bad("VERIFICATION_KEY_FILES")(&e))?;
            let jwk = public_jwk_from_pem(&pem)
                .map_err(|e| bad("VERIFICATION_KEY_FILES")(&format!("{}: {e}", path.display())))?;
            verify_only.push(jwk);
        }
        let mut id_token = Vec::new();
        for (alg, file, variable, generated) in [
            (
                IdTokenAlg::Rs256,
                &config.oidc_rsa_key_file,
                "OIDC_RSA_KEY_FILE",
                GENERATED_RSA_KEY_FILE,
            ),
            (
                IdTokenAlg::Es256,
                &config.oidc_ec_key_file,
                "OIDC_EC_KEY_FILE",
                GENERATED_EC_KEY_FILE,
            ),
        ] {
            let key = match file {
                Some(path) => {
                    let pem = read(path).map_err(|e| bad(variable)(&e))?;
                    IdTokenKey::from_pem(alg, &pem)
                        .map_err(|e| bad(variable)(&format!("{}: {e}", path.display())))?
                }
                None => generated_id_token_key(&config.data_dir, alg, generated)
                    .map_err(|e| bad("DATA_DIR")(&e))?,
            };
            id_token.push(key);
        }
        let mut retired = Vec::new();
        for path in &config.oidc_verification_key_files {
            let bad = |e: &dyn std::fmt::Display| {
                bad("OIDC_VERIFICATION_KEY_FILES")(&format!("{}: {e}", path.display()))
            };
            let pem = read(path).map_err(|e| bad(&e))?;
            let key = IdTokenKey::from_pem(IdTokenAlg::Rs256, &pem)
                .or_else(|_| IdTokenKey::from_pem(IdTokenAlg::Es256, &pem))
                .map_err(|_| bad(&"not an RSA or P-256 private key in PEM"))?;
            retired.push(key);
        }
        Ok(Self::new(active, verify_only)
            .with_id_token_keys(id_token)
            .with_retired_id_token_keys(retired))
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// Every public key: the active one first, then the verification-only
    /// ones (a key listed both ways appears once).
    pub fn jwks(&self) -> Result<JwkSet, suite_tokens::KeyError> {
        if let Some(published) = self.published.get() {
            return Ok(published.clone());
        }
        let mut keys = vec![self.active.public_jwk()?];
        for jwk in &self.verify_only {
            if !keys.iter().any(|k| k.common.key_id == jwk.common.key_id) {
                keys.push(jwk.clone());
            }
        }
        for key in self.id_token.iter().chain(&self.id_token_retired) {
            if !keys
                .iter()
                .any(|k| k.common.key_id.as_deref() == Some(key.kid()))
            {
                keys.push(key.public_jwk()?);
            }
        }
        Ok(self.published.get_or_init(|| JwkSet { keys }).clone())
    }
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Loads the generated key from `dir`, or makes one and keeps it there
/// (readable by the owner only), so tokens survive a restart.
fn generated_key(dir: &Path) -> Result<SigningKey, String> {
    let path = dir.join(GENERATED_KEY_FILE);
    if path.exists() {
        let key = SigningKey::from_pkcs8_pem_thumbprinted(&read(&path)?)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        tracing::warn!(path = %path.display(), kid = key.kid(),
            "NO SIGNING KEY CONFIGURED: using the key generated earlier in the data directory. \
             Set SIGNING_KEY_FILE for production, with the same key on every replica.");
        return Ok(key);
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let key = SigningKey::generate_thumbprinted().map_err(|e| e.to_string())?;
    write_private(&path, &key.to_pkcs8_pem())?;
    tracing::warn!(path = %path.display(), kid = key.kid(),
        "NO SIGNING KEY CONFIGURED: generated a new one and kept it in the data directory. \
         This is for local use only; set SIGNING_KEY_FILE for production, with the same key on every replica.");
    Ok(key)
}

/// Loads the generated ID-token key `file` from `dir`, or makes one and
/// keeps it there (owner-only), as for the access-token key.
fn generated_id_token_key(dir: &Path, alg: IdTokenAlg, file: &str) -> Result<IdTokenKey, String> {
    let path = dir.join(file);
    if path.exists() {
        return IdTokenKey::from_pem(alg, &read(&path)?)
            .map_err(|e| format!("{}: {e}", path.display()));
    }
    let key = IdTokenKey::generate(alg).map_err(|e| e.to_string())?;
    // A read-only file system (a hardened container given SIGNING_KEY_FILE
    // but no ID-token keys) cannot keep it: the service still starts, with
    // the key in memory, and says what to configure.
    let keep = |e: String| {
        tracing::warn!(error = %e, kid = key.kid(), ?alg,
            "NO ID-TOKEN KEY CONFIGURED and none can be kept in DATA_DIR: using one in memory. \
             ID tokens it signs stop verifying at a restart and differ between replicas: \
             set OIDC_RSA_KEY_FILE / OIDC_EC_KEY_FILE.");
        Ok(key.clone())
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return keep(format!("cannot create {}: {e}", dir.display()));
    }
    // Written whole under another name, then linked into place, which fails
    // if a process starting beside this one got there first: then its key,
    // complete, is the one.
    let partial = dir.join(format!("{file}.{}", uuid::Uuid::now_v7()));
    if let Err(e) = write_private(&partial, key.to_pem()) {
        return keep(e);
    }
    let linked = std::fs::hard_link(&partial, &path);
    let _ = std::fs::remove_file(&partial);
    if let Err(e) = linked {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            return IdTokenKey::from_pem(alg, &read(&path)?)
                .map_err(|e| format!("{}: {e}", path.display()));
        }
        return Err(format!("cannot write {}: {e}", path.display()));
    }
    tracing::warn!(path = %path.display(), kid = key.kid(), ?alg,
        "NO ID-TOKEN KEY CONFIGURED: generated one and kept it in the data directory. \
         Set OIDC_RSA_KEY_FILE / OIDC_EC_KEY_FILE for production, with the same keys on every replica.");
    Ok(key)
}

fn write_private(path: &Path, pem: &str) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    #[cfg(unix)]
    {
        use std::{io::Write, os::unix::fs::OpenOptionsExt};
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(fail)?;
        f.write_all(pem.as_bytes()).map_err(fail)
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, pem).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key ids the ring publishes, in its JWKS order.
    fn published_kids(ring: &KeyRing) -> Result<Vec<String>, Box<dyn std::error::Error>> {
        let jwks = ring.jwks()?;
        Ok(jwks
            .keys
            .into_iter()
            .filter_map(|k| k.common.key_id)
            .collect())
    }

    /// A generated private key is readable by its owner alone.
    fn assert_owner_only(path: &Path) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)?.permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
        #[cfg(not(unix))]
        let _ = path;
        Ok(())
    }

    #[test]
    fn a_generated_key_is_kept_and_reused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let first = generated_key(dir.path())?;
        let again = generated_key(dir.path())?;
        assert_eq!(first.kid(), again.kid());
        assert_owner_only(&dir.path().join(GENERATED_KEY_FILE))?;
        Ok(())
    }

    #[test]
    fn generated_id_token_keys_are_kept_owner_only_and_published()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let rsa = generated_id_token_key(dir.path(), IdTokenAlg::Rs256, GENERATED_RSA_KEY_FILE)?;
        let again = generated_id_token_key(dir.path(), IdTokenAlg::Rs256, GENERATED_RSA_KEY_FILE)?;
        assert_eq!(rsa.kid(), again.kid());
        assert_owner_only(&dir.path().join(GENERATED_RSA_KEY_FILE))?;
        let ec = generated_id_token_key(dir.path(), IdTokenAlg::Es256, GENERATED_EC_KEY_FILE)?;
        let ring = KeyRing::new(SigningKey::generate_thumbprinted()?, vec![])
            .with_id_token_keys(vec![rsa.clone(), ec.clone()]);
        let jwks = ring.jwks()?;
        let algs: Vec<_> = jwks
            .keys
            .iter()
            .map(|k| k.common.key_algorithm.map(|a| a.to_string()))
            .collect();
        assert_eq!(
            algs,
            vec![
                Some("EdDSA".to_owned()),
                Some("RS256".to_owned()),
                Some("ES256".to_owned())
            ]
        );
        assert!(jwks.keys.iter().all(|k| k.common.key_id.is_some()
            && k.common.public_key_use == Some(jsonwebtoken::jwk::PublicKeyUse::Signature)));
        Ok(())
    }

    #[test]
    fn an_id_token_key_that_cannot_be_kept_is_used_from_memory()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        // A data directory that cannot be made (its parent is a file), as a
        // read-only file system refuses it.
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x")?;
        let data = file.join("data");
        let key = generated_id_token_key(&data, IdTokenAlg::Es256, GENERATED_EC_KEY_FILE)?;
        assert!(!key.kid().is_empty());
        assert!(!data.exists());
        Ok(())
    }

    #[test]
    fn retired_id_token_keys_are_published_after_the_active_ones_and_never_sign()
    -> Result<(), Box<dyn std::error::Error>> {
        let old_rsa = IdTokenKey::generate(IdTokenAlg::Rs256)?;
        let old_ec = IdTokenKey::generate(IdTokenAlg::Es256)?;
        let rsa = IdTokenKey::generate(IdTokenAlg::Rs256)?;
        let ec = IdTokenKey::generate(IdTokenAlg::Es256)?;
        let dir = tempfile::tempdir()?;
        let mut config = Config::defaults();
        config.data_dir = dir.path().to_owned();
        let mut files = Vec::new();
        for (name, key) in [
            ("rsa.pem", &rsa),
            ("ec.pem", &ec),
            ("old-rsa.pem", &old_rsa),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, key.to_pem())?;
            files.push(path);
        }
        let old_ec_path = dir.path().join("old-ec.pem");
        std::fs::write(&old_ec_path, old_ec.to_pem())?;
        config.oidc_rsa_key_file = Some(files[0].clone());
        config.oidc_ec_key_file = Some(files[1].clone());
        // The active RSA key listed as retired too appears once.
        config.oidc_verification_key_files = vec![files[2].clone(), old_ec_path, files[0].clone()];
        let ring = KeyRing::load(&config)?;
        let kids = published_kids(&ring)?;
        assert_eq!(
            kids,
            vec![
                ring.active().kid().to_owned(),
                rsa.kid().to_owned(),
                ec.kid().to_owned(),
                old_rsa.kid().to_owned(),
                old_ec.kid().to_owned(),
            ]
        );
        assert_eq!(
            ring.id_token_key(IdTokenAlg::Rs256).map(IdTokenKey::kid),
            Some(rsa.kid())
        );
        assert_eq!(
            ring.id_token_key(IdTokenAlg::Es256).map(IdTokenKey::kid),
            Some(ec.kid())
        );

        let not_a_key = dir.path().join("junk.pem");
        std::fs::write(
            &not_a_key,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )?;
        config.oidc_verification_key_files = vec![not_a_key];
        let err = KeyRing::load(&config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("OIDC_VERIFICATION_KEY_FILES") && err.contains("junk.pem"),
            "{err}"
        );
        Ok(())
    }

    #[test]
    fn verification_only_keys_are_published_after_the_active_one()
    -> Result<(), Box<dyn std::error::Error>> {
        let old = SigningKey::generate_thumbprinted()?;
        let new = SigningKey::generate_thumbprinted()?;
        let ring = KeyRing::new(
            new.clone(),
            vec![public_jwk_from_pem(&old.to_pkcs8_pem())?, new.public_jwk()?],
        );
        let kids = published_kids(&ring)?;
        assert_eq!(kids, vec![new.kid().to_owned(), old.kid().to_owned()]);
        Ok(())
    }
}
