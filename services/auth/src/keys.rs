//! The signing keys: one active key that signs, and verification-only keys
//! (earlier active keys) that still verify during a rotation. Every replica
//! configured with the same keys issues tokens that verify everywhere; key ids
//! are RFC 7638 thumbprints, so they agree without configuration.

use crate::config::{Config, ConfigError};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use secrecy::ExposeSecret;
use std::path::Path;
use suite_tokens::{SigningKey, public_jwk_from_pem};

/// The file a generated key is kept in, under `DATA_DIR`.
pub const GENERATED_KEY_FILE: &str = "auth-signing-key.pem";

#[derive(Debug, Clone)]
pub struct KeyRing {
    active: SigningKey,
    verify_only: Vec<Jwk>,
}

impl KeyRing {
    pub fn new(active: SigningKey, verify_only: Vec<Jwk>) -> Self {
        Self {
            active,
            verify_only,
        }
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
        Ok(Self::new(active, verify_only))
    }

    /// The key that signs new tokens.
    pub fn active(&self) -> &SigningKey {
        &self.active
    }

    /// Every public key: the active one first, then the verification-only
    /// ones (a key listed both ways appears once).
    pub fn jwks(&self) -> Result<JwkSet, suite_tokens::KeyError> {
        let mut keys = vec![self.active.public_jwk()?];
        for jwk in &self.verify_only {
            if !keys.iter().any(|k| k.common.key_id == jwk.common.key_id) {
                keys.push(jwk.clone());
            }
        }
        Ok(JwkSet { keys })
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

    #[test]
    fn a_generated_key_is_kept_and_reused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let first = generated_key(dir.path())?;
        let again = generated_key(dir.path())?;
        assert_eq!(first.kid(), again.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(GENERATED_KEY_FILE))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
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
        let kids: Vec<_> = ring
            .jwks()?
            .keys
            .into_iter()
            .filter_map(|k| k.common.key_id)
            .collect();
        assert_eq!(kids, vec![new.kid().to_owned(), old.kid().to_owned()]);
        Ok(())
    }
}
