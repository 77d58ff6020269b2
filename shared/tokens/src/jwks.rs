//! Where a verifier's public keys come from, and the cache that refreshes
//! them when a token names a key id it has not seen (key rotation).

use crate::keys::KeySet;
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
    /// An `http://` URL, fetched with GET (inside a cluster; TLS is the mesh's job).
    Url(http::Uri),
    /// The auth service's `GetJwks` RPC, written `grpc://host:port`.
    Grpc(Box<tonic::transport::Endpoint>),
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
    #[error("JWKS URL must be http://host[:port]/path or grpc://host:port: {0}")]
    BadUrl(String),
    #[error("cannot fetch JWKS from {url}: {reason}")]
    Fetch { url: String, reason: String },
}

/// Asks the auth service for its keys.
async fn fetch_grpc(endpoint: &tonic::transport::Endpoint) -> Result<JwkSet, JwksError> {
    use suite_proto::auth::{GetJwksRequest, auth_service_client::AuthServiceClient};
    let fail = |reason: String| JwksError::Fetch {
        url: endpoint.uri().to_string(),
        reason,
    };
    let channel = endpoint.connect().await.map_err(|e| fail(e.to_string()))?;
    let reply = AuthServiceClient::new(channel)
        .get_jwks(GetJwksRequest {})
        .await
        .map_err(|e| fail(e.message().to_owned()))?
        .into_inner();
    Ok(crate::keys::jwks_from_proto(&reply.keys))
}

/// The largest JWKS document accepted from a URL.
const MAX_JWKS_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

async fn fetch_url(uri: &http::Uri) -> Result<JwkSet, JwksError> {
    use http_body_util::{BodyExt, Empty, Limited};
    let fail = |reason: String| JwksError::Fetch {
        url: uri.to_string(),
        reason,
    };
    let host = uri
        .host()
        .ok_or_else(|| JwksError::BadUrl(uri.to_string()))?
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let fetch = async {
        let stream = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(conn);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let request = http::Request::get(path)
            .header(http::header::HOST, format!("{host}:{port}"))
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::<bytes::Bytes>::new())
            .map_err(|e| fail(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !response.status().is_success() {
            return Err(fail(format!("HTTP status {}", response.status())));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        Ok(serde_json::from_slice(&body)?)
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| fail("timed out".into()))?
}

impl std::str::FromStr for JwksSource {
    type Err = JwksError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::from_config(value)
    }
}

impl JwksSource {
    /// Reads a configuration value: inline JSON if it starts with `{`, a URL
    /// if it starts with `http://` (`grpc://` for GetJwks), else a file path.
    pub fn from_config(value: &str) -> Result<Self, JwksError> {
        let value = value.trim();
        if value.starts_with('{') {
            Ok(Self::Static(serde_json::from_str(value)?))
        } else if let Some(authority) = value.strip_prefix("grpc://") {
            let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{authority}"))
                .map_err(|_| JwksError::BadUrl(value.to_owned()))?
                .connect_timeout(FETCH_TIMEOUT)
                .timeout(FETCH_TIMEOUT);
            Ok(Self::Grpc(Box::new(endpoint)))
        } else if value.starts_with("http://") {
            let uri: http::Uri = value
                .parse()
                .map_err(|_| JwksError::BadUrl(value.to_owned()))?;
            if uri.host().is_none() {
                return Err(JwksError::BadUrl(value.to_owned()));
            }
            Ok(Self::Url(uri))
        } else {
            Ok(Self::File(PathBuf::from(value)))
        }
    }

    /// The `GetJwks` of the auth service at `addr`.
    pub fn grpc(addr: std::net::SocketAddr) -> Self {
        Self::Grpc(Box::new(
            tonic::transport::Endpoint::from(
                // Cannot fail: a socket address is a valid authority.
                http::Uri::try_from(format!("http://{addr}"))
                    .unwrap_or_else(|_| http::Uri::from_static("http://127.0.0.1")),
            )
            .connect_timeout(FETCH_TIMEOUT)
            .timeout(FETCH_TIMEOUT),
        ))
    }

    pub async fn fetch(&self) -> Result<JwkSet, JwksError> {
        match self {
            Self::Static(jwks) => Ok(jwks.clone()),
            Self::Url(uri) => fetch_url(uri).await,
            Self::Grpc(endpoint) => fetch_grpc(endpoint).await,
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
    /// When the last fetch was tried, and whether it worked.
    last_fetch: Mutex<Option<(Instant, bool)>>,
}

/// After a failed fetch (the source not up yet), how soon an unknown key id may retry.
const RETRY_AFTER_FAILURE: Duration = Duration::from_millis(500);

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

    /// A cache over `source`, loaded now if it can be (else at the first
    /// token that needs it), saying in the log what a verifier will trust.
    pub async fn load_from(source: Option<JwksSource>, min_refresh: Duration) -> Self {
        let configured = source.is_some();
        if !configured {
            tracing::warn!(
                "JWKS is not set: no access token will verify, so only open calls can succeed"
            );
        }
        let keys = Self::new(source, min_refresh);
        match keys.load().await {
            Ok(0) if configured => tracing::warn!("the JWKS holds no usable Ed25519 key"),
            Ok(n) => tracing::debug!(keys = n, "JWKS loaded"),
            Err(e) => {
                tracing::warn!(error = %e, "JWKS not loaded yet; will retry when a token needs it")
            }
        }
        keys
    }

    /// Fetches the keys now; returns how many usable keys there are.
    pub async fn load(&self) -> Result<usize, JwksError> {
        let mut last = self.inner.last_fetch.lock().await;
        self.fetch_locked(&mut last).await
    }

    async fn fetch_locked(&self, last: &mut Option<(Instant, bool)>) -> Result<usize, JwksError> {
        let Some(source) = &self.inner.source else {
            return Ok(0);
        };
        *last = Some((Instant::now(), false));
        let keys = KeySet::from_jwks(&source.fetch().await?);
        *last = Some((Instant::now(), true));
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
        let wait = |ok: bool| {
            if ok {
                self.inner.min_refresh
            } else {
                self.inner.min_refresh.min(RETRY_AFTER_FAILURE)
            }
        };
        if last.is_some_and(|(t, ok)| t.elapsed() < wait(ok)) {
            return keys;
        }
        if let Err(e) = self.fetch_locked(&mut last).await {
            tracing::warn!(error = %e, "refreshing the JWKS failed; keeping the old keys");
        }
        self.keys().await
    }
}

#[cfg(all(test, feature = "signing"))]
mod tests {
    use super::*;
    use crate::signing::{SigningKey, jwks_of};

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

    #[tokio::test]
    async fn a_jwks_is_fetched_from_an_http_url() -> Result<(), Box<dyn std::error::Error>> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let key = SigningKey::generate("served")?;
        let body = serde_json::to_string(&jwks_of(std::slice::from_ref(&key))?)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            if let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
            }
        });
        let source = JwksSource::from_config(&format!("http://{addr}/.well-known/jwks.json"))?;
        let cache = KeyCache::new(Some(source), Duration::ZERO);
        assert_eq!(cache.load().await?, 1);
        // Nobody listens any more: a fetch error, not a hang or a panic.
        let gone = JwksSource::from_config(&format!("http://{addr}/jwks.json"))?;
        assert!(gone.fetch().await.is_err());
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
        assert!(matches!(
            JwksSource::from_config("http://auth:8080/jwks"),
            Ok(JwksSource::Url(_))
        ));
        assert!(JwksSource::from_config("http://").is_err());
        assert!(matches!(
            JwksSource::from_config("grpc://auth:50052"),
            Ok(JwksSource::Grpc(_))
        ));
    }
}
