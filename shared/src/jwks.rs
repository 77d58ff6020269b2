//! Where a verifier's public keys come from, and the cache that refreshes
//! them when a token names a key id it has not seen (key rotation).

use crate::jwt::KeySet;
use jsonwebtoken::jwk::JwkSet;
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};
use tokio::sync::{Mutex, RwLock};

/// A JWKS document's origin.
#[derive(Debug, Clone)]
pub enum JwksSource {
    /// A file, re-read on refresh (e.g. a mounted Kubernetes Secret or ConfigMap).
    File(PathBuf),
    /// A fixed document.
    Static(JwkSet),
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read JWKS file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("JWKS document is not valid JSON: {0}")]
    Parse(#[from] serde_json::Error),
}

impl JwksSource {
    /// Reads a configuration value: inline JSON if it starts with `{`, else a file path.
    pub fn from_config(value: &str) -> Result<Self, JwksError> {
        let value = value.trim();
        if value.starts_with('{') {
            Ok(Self::Static(serde_json::from_str(value)?))
        } else {
            Ok(Self::File(PathBuf::from(value)))
        }
    }

    pub async fn fetch(&self) -> Result<JwkSet, JwksError> {
        match self {
            Self::Static(jwks) => Ok(jwks.clone()),
            Self::File(path) => {
                let text =
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|source| JwksError::Read {
                            path: path.clone(),
                            source,
                        })?;
                Ok(serde_json::from_str(&text)?)
            }
        }
    }
}

/// Public keys, fetched from a source and refreshed at most every
/// `min_refresh` when an unknown key id shows up.
#[derive(Clone)]
pub struct KeyCache {
    inner: Arc<Inner>,
}

struct Inner {
    source: Option<JwksSource>,
    min_refresh: Duration,
    keys: RwLock<Arc<KeySet>>,
    last_fetch: Mutex<Option<Instant>>,
}

impl KeyCache {
    /// A cache over `source`; `None` trusts no key at all (every token is refused).
    pub fn new(source: Option<JwksSource>, min_refresh: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                source,
                min_refresh,
                keys: RwLock::new(Arc::new(KeySet::default())),
                last_fetch: Mutex::new(None),
            }),
        }
    }

    /// Fetches the keys now; returns how many usable keys there are.
    pub async fn load(&self) -> Result<usize, JwksError> {
        let mut last = self.inner.last_fetch.lock().await;
        self.fetch_locked(&mut last).await
    }

    async fn fetch_locked(&self, last: &mut Option<Instant>) -> Result<usize, JwksError> {
        let Some(source) = &self.inner.source else {
            return Ok(0);
        };
        *last = Some(Instant::now());
        let keys = KeySet::from_jwks(&source.fetch().await?);
        let n = keys.len();
        *self.inner.keys.write().await = Arc::new(keys);
        Ok(n)
    }

    /// The current keys.
    pub async fn keys(&self) -> Arc<KeySet> {
        self.inner.keys.read().await.clone()
    }

    /// The keys, refreshed first if `kid` is unknown and the last fetch is old enough.
    pub async fn keys_for(&self, kid: &str) -> Arc<KeySet> {
        let keys = self.keys().await;
        if keys.get(kid).is_some() || self.inner.source.is_none() {
            return keys;
        }
        let mut last = self.inner.last_fetch.lock().await;
        // Another caller may have refreshed while we waited for the lock.
        let keys = self.keys().await;
        if keys.get(kid).is_some() {
            return keys;
        }
        if last.is_some_and(|t| t.elapsed() < self.inner.min_refresh) {
            return keys;
        }
        if let Err(e) = self.fetch_locked(&mut last).await {
            tracing::warn!(error = %e, "refreshing the JWKS failed; keeping the old keys");
        }
        self.keys().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::{SigningKey, jwks_of};

    #[tokio::test]
    async fn a_rotated_key_in_the_file_is_picked_up_on_an_unknown_kid()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("jwks.json");
        let old = SigningKey::generate("old")?;
        let new = SigningKey::generate("new")?;
        std::fs::write(
            &path,
            serde_json::to_string(&jwks_of(std::slice::from_ref(&old))?)?,
        )?;
        let cache = KeyCache::new(
            Some(JwksSource::from_config(path.to_str().ok_or("path")?)?),
            Duration::ZERO,
        );
        assert_eq!(cache.load().await?, 1);
        assert!(cache.keys_for("new").await.get("new").is_none());
        std::fs::write(&path, serde_json::to_string(&jwks_of(&[old, new])?)?)?;
        assert!(cache.keys_for("new").await.get("new").is_some());
        assert!(cache.keys().await.get("old").is_some());
        Ok(())
    }

    #[tokio::test]
    async fn unknown_kids_do_not_reload_more_often_than_allowed()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, r#"{"keys":[]}"#)?;
        let cache = KeyCache::new(
            Some(JwksSource::File(path.clone())),
            Duration::from_secs(3600),
        );
        cache.load().await?;
        let key = SigningKey::generate("late")?;
        std::fs::write(&path, serde_json::to_string(&jwks_of(&[key])?)?)?;
        // Within the refresh interval, an unknown kid does not trigger a reload.
        assert!(cache.keys_for("late").await.get("late").is_none());
        Ok(())
    }

    #[test]
    fn inline_json_and_paths_are_told_apart() {
        assert!(matches!(
            JwksSource::from_config(r#" {"keys":[]}"#),
            Ok(JwksSource::Static(_))
        ));
        assert!(matches!(
            JwksSource::from_config("/etc/jwks.json"),
            Ok(JwksSource::File(_))
        ));
        assert!(JwksSource::from_config("{not json").is_err());
    }
}
