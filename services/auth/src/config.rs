//! The auth service's configuration: environment variables (or flags),
//! validated at start-up with messages that name the variable.

use crate::core::Settings;
use clap::builder::TypedValueParser as _;
use secrecy::SecretString;
use std::str::FromStr;
use std::{net::SocketAddr, path::PathBuf, time::Duration};
use suite_db::{DatabaseUrl, PoolArgs};
use suite_grpc::{
    config::{GrpcArgs, UpstreamArgs},
    forwarded::ForwardedArgs,
};
use suite_tokens::config::TokenArgs;

/// `SIGNING_KEY`'s text as a secret: `Debug` shows `[REDACTED]` and the
/// memory is zeroed when dropped.
fn secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

/// The longest session setting accepted (ten years): session ends are
/// dates, and a date far enough out does not exist.
const MAX_SESSION_SECS: u64 = 10 * 365 * 86_400;

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50052")]
    pub listen_addr: SocketAddr,

    /// `postgres://user@host/db` or `sqlite:path` (created if missing).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:data/auth.db", value_parser = DatabaseUrl::from_str)]
    pub database_url: DatabaseUrl,

    #[command(flatten)]
    pub pool: PoolArgs,

    /// The active signing key: Ed25519 private key, PKCS#8 PEM text.
    #[arg(long, env = "SIGNING_KEY", hide_env_values = true, value_parser = secret)]
    pub signing_key: Option<SecretString>,

    /// The active signing key as a PEM file (e.g. a mounted Kubernetes Secret).
    #[arg(long, env = "SIGNING_KEY_FILE")]
    pub signing_key_file: Option<PathBuf>,

    /// Verification-only keys (earlier signing keys, for rotation), as PEM
    /// files (public or private), comma-separated.
    #[arg(long, env = "VERIFICATION_KEY_FILES", value_delimiter = ',')]
    pub verification_key_files: Vec<PathBuf>,

    /// Where a generated signing key is kept when none is configured.
    #[arg(long, env = "DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// The OpenID Connect issuer: the public base URL the gateway serves the
    /// provider's endpoints under (`iss` of ID tokens, the discovery document's
    /// `issuer`). Behind a proxy, the URL browsers and clients use.
    #[arg(long, env = "PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    pub public_url: String,

    /// The RSA private key (PEM, 2048 bits or more) that signs RS256 ID
    /// tokens; unset: one generated once and kept in DATA_DIR.
    #[arg(long, env = "OIDC_RSA_KEY_FILE")]
    pub oidc_rsa_key_file: Option<PathBuf>,

    /// The P-256 private key (PEM: PKCS#8, or SEC1 `BEGIN EC PRIVATE KEY`)
    /// that signs ES256 ID tokens; unset: one generated once and kept in
    /// DATA_DIR.
    #[arg(long, env = "OIDC_EC_KEY_FILE")]
    pub oidc_ec_key_file: Option<PathBuf>,

    /// Whether anyone may register an OAuth client at the gateway's
    /// `/oauth2/register` (RFC 7591 dynamic client registration). Such
    /// clients are never first-party and never get the admin scope.
    #[arg(long, env = "OIDC_DYNAMIC_REGISTRATION", default_value_t = false, action = clap::ArgAction::Set)]
    pub oidc_dynamic_registration: bool,

    /// Earlier ID-token keys (RSA or P-256 private keys, PEM, as the key
    /// files), comma-separated: published in the JWKS after a rotation so
    /// the ID tokens they signed keep verifying; never used to sign.
    #[arg(long, env = "OIDC_VERIFICATION_KEY_FILES", value_delimiter = ',')]
    pub oidc_verification_key_files: Vec<PathBuf>,

    /// The `iss` of the tokens issued (and required of tokens presented).
    #[command(flatten)]
    pub tokens: TokenArgs,

    /// The `aud` of access tokens (the public API).
    #[arg(long, env = "ACCESS_TOKEN_AUDIENCE", default_value = "suite")]
    pub access_token_audience: String,

    /// The user service's gRPC address.
    #[arg(
        long,
        env = "USER_SERVICE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub user_service_url: String,

    /// The `aud` of the service tokens this service presents to the user service.
    #[arg(long, env = "USER_SERVICE_AUDIENCE", default_value = "suite-user")]
    pub user_service_audience: String,

    /// Milliseconds to wait for a connection to the user service.
    #[arg(long = "user-service-connect-timeout-ms", env = "USER_SERVICE_CONNECT_TIMEOUT_MS", value_name = "USER_SERVICE_CONNECT_TIMEOUT_MS", default_value = "1000", value_parser = clap::value_parser!(u64).range(10..=60_000).map(Duration::from_millis))]
    pub user_service_connect_timeout: Duration,

    /// Seconds a call to the user service may take.
    #[arg(long = "user-service-timeout-secs", env = "USER_SERVICE_TIMEOUT_SECS", value_name = "USER_SERVICE_TIMEOUT_SECS", default_value = "5", value_parser = clap::value_parser!(u64).range(1..=300).map(Duration::from_secs))]
    pub user_service_timeout: Duration,

    #[command(flatten)]
    pub upstream: UpstreamArgs,

    /// A session unused (not refreshed) this long ends, in seconds (default 7 days).
    #[arg(long = "session-idle-timeout-secs", env = "SESSION_IDLE_TIMEOUT_SECS", value_name = "SESSION_IDLE_TIMEOUT_SECS", default_value = "604800", value_parser = clap::value_parser!(u64).range(1..=MAX_SESSION_SECS).map(Duration::from_secs))]
    pub session_idle_timeout: Duration,

    /// The longest lifetime a personal access token may be given, in days
    /// (every token needs an expiry, at most this far away).
    #[arg(long = "pat-max-lifetime-days", env = "PAT_MAX_LIFETIME_DAYS", value_name = "PAT_MAX_LIFETIME_DAYS", default_value = "365", value_parser = clap::value_parser!(u64).range(1..=3650).map(|d| Duration::from_secs(d * 86_400)))]
    pub pat_max_lifetime: Duration,

    /// How recent a sign-in with a second factor must be to create a
    /// personal access token, for a user who has a factor, in seconds (as
    /// the user service's STEP_UP_MAX_AGE_SECS for credential changes: set
    /// them alike).
    #[arg(long = "step-up-max-age-secs", env = "STEP_UP_MAX_AGE_SECS", value_name = "STEP_UP_MAX_AGE_SECS", default_value = "900", value_parser = clap::value_parser!(u64).range(60..=86_400).map(Duration::from_secs))]
    pub step_up_max_age: Duration,

    /// A session ends this long after login however active, in seconds (default 30 days).
    #[arg(long = "session-max-lifetime-secs", env = "SESSION_MAX_LIFETIME_SECS", value_name = "SESSION_MAX_LIFETIME_SECS", default_value = "2592000", value_parser = clap::value_parser!(u64).range(1..=MAX_SESSION_SECS).map(Duration::from_secs))]
    pub session_max_lifetime: Duration,

    /// Seconds during which a just-retired refresh token still refreshes
    /// (concurrent or retried calls) instead of counting as reuse.
    #[arg(long = "refresh-reuse-grace-secs", env = "REFRESH_REUSE_GRACE_SECS", value_name = "REFRESH_REUSE_GRACE_SECS", default_value = "5", value_parser = clap::value_parser!(u64).range(0..=300).map(Duration::from_secs))]
    pub refresh_reuse_grace: Duration,

    /// Seconds a client's back-channel logout URI may take to answer.
    #[arg(long = "backchannel-logout-timeout-secs", env = "BACKCHANNEL_LOGOUT_TIMEOUT_SECS", value_name = "BACKCHANNEL_LOGOUT_TIMEOUT_SECS", default_value = "5", value_parser = clap::value_parser!(u64).range(1..=60).map(Duration::from_secs))]
    pub backchannel_logout_timeout: Duration,

    /// Milliseconds before the first retry of a logout token a client did
    /// not accept; each retry waits twice as long, up to ten minutes.
    #[arg(long = "backchannel-logout-retry-ms", env = "BACKCHANNEL_LOGOUT_RETRY_MS", value_name = "BACKCHANNEL_LOGOUT_RETRY_MS", default_value = "1000", value_parser = clap::value_parser!(u64).range(10..=600_000).map(Duration::from_millis))]
    pub backchannel_logout_retry: Duration,

    /// Attempts at delivering one logout token before it is given up (the
    /// default spans about two hours).
    #[arg(long, env = "BACKCHANNEL_LOGOUT_ATTEMPTS", default_value = "20", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub backchannel_logout_attempts: u32,

    /// Who may tell this service the client's address (the gateway).
    #[command(flatten)]
    pub forwarded: ForwardedArgs,

    #[command(flatten)]
    pub grpc: GrpcArgs,

    /// Where events go (NATS JetStream, or in-process).
    #[command(flatten)]
    pub events: suite_events::EventsArgs,
}

pub use suite_grpc::config::ConfigError;

impl Config {
    /// The defaults, as `cargo run` with nothing set would have them.
    pub fn defaults() -> Self {
        suite_grpc::config::defaults()
    }

    /// Checks what clap's parsers cannot: cross-field and semantic rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |variable, reason: &str| Err(ConfigError::new(variable, reason));
        if let Err(e) = self.events.validate() {
            return err("NATS_URL/EVENTS_*", &e);
        }
        if self.signing_key.is_some() && self.signing_key_file.is_some() {
            return err(
                "SIGNING_KEY",
                "set SIGNING_KEY or SIGNING_KEY_FILE, not both",
            );
        }
        if !(self.user_service_url.starts_with("http://")
            || self.user_service_url.starts_with("https://"))
        {
            return err("USER_SERVICE_URL", "must be an http:// or https:// URL");
        }
        if self.tokens.jwt_issuer.trim().is_empty() {
            return err("JWT_ISSUER", "must not be empty");
        }
        let public = self.public_url.trim_end_matches('/');
        if !(public.starts_with("http://") || public.starts_with("https://"))
            || public.contains(['?', '#'])
            || public.len() <= "https://".len()
        {
            return err(
                "PUBLIC_URL",
                "must be an absolute http:// or https:// URL without query or fragment",
            );
        }
        if self.access_token_audience.trim().is_empty() {
            return err("ACCESS_TOKEN_AUDIENCE", "must not be empty");
        }
        Ok(())
    }

    /// What the core needs of the configuration.
    pub fn settings(&self) -> Settings {
        Settings {
            issuer: self.tokens.jwt_issuer.clone(),
            audience: self.access_token_audience.clone(),
            access_ttl: self.tokens.access_token_ttl,
            idle_timeout: self.session_idle_timeout,
            max_lifetime: self.session_max_lifetime,
            reuse_grace: self.refresh_reuse_grace,
            public_url: self.public_url.trim_end_matches('/').to_owned(),
            dynamic_registration: self.oidc_dynamic_registration,
        }
    }

    /// How logout tokens are delivered to clients.
    pub fn backchannel(&self) -> crate::oauth::backchannel::Delivery {
        crate::oauth::backchannel::Delivery {
            timeout: self.backchannel_logout_timeout,
            first_retry: self.backchannel_logout_retry,
            attempts: self.backchannel_logout_attempts,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn session_lengths_too_long_to_be_dates_are_refused_naming_the_variable() {
        for (flag, variable) in [
            ("--session-max-lifetime-secs", "SESSION_MAX_LIFETIME_SECS"),
            ("--session-idle-timeout-secs", "SESSION_IDLE_TIMEOUT_SECS"),
        ] {
            let huge = u64::MAX.to_string();
            let err = suite_grpc::config::parse_from::<Config, _, _>(["suite-auth", flag, &huge])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(variable), "{err}");
            let ten_years = MAX_SESSION_SECS.to_string();
            assert!(
                suite_grpc::config::parse_from::<Config, _, _>(["suite-auth", flag, &ten_years])
                    .is_ok()
            );
        }
    }

    #[test]
    fn the_signing_key_is_kept_but_never_shown() {
        let config: Config =
            suite_grpc::config::parse_from(["suite-auth", "--signing-key", "PEM TEXT"])
                .expect("parses");
        let key = config.signing_key.as_ref().map(|k| k.expose_secret());
        assert_eq!(key, Some("PEM TEXT"));
        assert!(!format!("{config:?}").contains("PEM TEXT"));
    }
}
