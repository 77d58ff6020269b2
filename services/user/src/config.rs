//! The user service's configuration: environment variables (or flags),
//! validated at start-up with messages that name the variable.

use crate::{password::HashParams, throttle::ThrottlePolicy};
use clap::builder::TypedValueParser as _;
use std::str::FromStr;
use std::{net::SocketAddr, time::Duration};
use suite_db::DatabaseUrl;
use suite_db::PoolArgs;
use suite_events::EventsArgs;
use suite_grpc::{config::GrpcArgs, forwarded::ForwardedArgs};
use suite_tokens::{
    TokenRules,
    config::{JwksArgs, TokenArgs},
};

#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// Address the gRPC server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:50051")]
    pub listen_addr: SocketAddr,

    /// `postgres://user@host/db` or `sqlite:path` (created if missing).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite:data/user.db", value_parser = DatabaseUrl::from_str)]
    pub database_url: DatabaseUrl,

    #[command(flatten)]
    pub pool: PoolArgs,

    /// Where the trusted public keys come from (unset: no token verifies).
    #[command(flatten)]
    pub keys: JwksArgs,

    #[command(flatten)]
    pub tokens: TokenArgs,

    /// Accepted `aud` values, comma-separated; a token must name one.
    #[arg(
        long,
        env = "JWT_AUDIENCES",
        default_value = "suite,suite-user",
        value_delimiter = ','
    )]
    pub jwt_audiences: Vec<String>,

    /// Argon2id memory cost in KiB (OWASP: 19456).
    #[arg(long, env = "ARGON2_MEMORY_KIB", default_value_t = 19456)]
    pub argon2_memory_kib: u32,

    /// Argon2id passes (OWASP: 2).
    #[arg(long, env = "ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,

    /// Argon2id lanes (OWASP: 1).
    #[arg(long, env = "ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,

    /// Password hashes computed at once (default: the number of CPUs).
    #[arg(long, env = "PASSWORD_HASH_CONCURRENCY")]
    pub password_hash_concurrency: Option<usize>,

    /// Password operations allowed to wait for a turn before calls are refused.
    #[arg(long, env = "PASSWORD_HASH_QUEUE", default_value_t = 1024)]
    pub password_hash_queue: usize,

    /// How many nice steps below the serving threads the hashing threads
    /// run (0-19), so that other calls are answered during a login storm.
    #[arg(long, env = "PASSWORD_HASH_NICE", default_value_t = 10, value_parser = clap::value_parser!(u8).range(0..=19))]
    pub password_hash_nice: u8,

    /// The least time a failed password check takes, if longer than the
    /// measured failure floor. Not a variable or flag: the floor is
    /// measured, and only tests stretch it, to see a failure still waiting.
    #[arg(skip)]
    pub failure_floor_at_least: Duration,

    /// Least zxcvbn score (0-4) a new password needs.
    #[arg(long, env = "PASSWORD_MIN_SCORE", default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=4))]
    pub password_min_score: u8,

    /// Failed password checks per account and client address before the
    /// throttle starts (logins and ChangePassword's current password).
    #[arg(long, env = "LOGIN_FREE_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(i64).range(0..=100))]
    pub login_free_attempts: i64,

    /// Failed password checks per account, from all addresses together,
    /// before the whole account is throttled.
    #[arg(long, env = "LOGIN_ACCOUNT_FREE_ATTEMPTS", default_value_t = 30, value_parser = clap::value_parser!(i64).range(0..=10_000))]
    pub login_account_free_attempts: i64,

    /// The longest lock, in seconds.
    #[arg(long = "login-max-lock-secs", env = "LOGIN_MAX_LOCK_SECS", value_name = "LOGIN_MAX_LOCK_SECS", default_value = "60", value_parser = clap::value_parser!(u64).range(1..=3600).map(Duration::from_secs))]
    pub login_max_lock: Duration,

    /// Failed checks older than this many seconds are forgotten.
    #[arg(long = "login-forget-after-secs", env = "LOGIN_FORGET_AFTER_SECS", value_name = "LOGIN_FORGET_AFTER_SECS", default_value = "900", value_parser = clap::value_parser!(u64).range(1..=86_400).map(Duration::from_secs))]
    pub login_forget_after: Duration,

    /// Password checks of one account that may wait for their turn (the
    /// checks of one account run one at a time); more are refused at once
    /// (429), so one account's storm cannot queue out everyone else's.
    #[arg(long, env = "LOGIN_ACCOUNT_QUEUE", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub login_account_queue: u64,

    /// Event streams (StreamMyEvents, StreamEvents) open at once, in all.
    #[arg(long, env = "MAX_EVENT_STREAMS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_event_streams: u32,

    /// Event streams one caller (a user, or a service) may hold open at
    /// once; more are refused (ResourceExhausted), so that one caller cannot
    /// take every stream from the others.
    #[arg(long, env = "MAX_EVENT_STREAMS_PER_USER", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_event_streams_per_user: u32,

    /// Who may tell this service the client's address (ChangePassword's throttle).
    #[command(flatten)]
    pub forwarded: ForwardedArgs,

    #[command(flatten)]
    pub grpc: GrpcArgs,

    /// Where events go (NATS JetStream, or in-process).
    #[command(flatten)]
    pub events: EventsArgs,

    /// The user record cache's Redis (unset: no cache).
    #[command(flatten)]
    pub redis: suite_redis::RedisArgs,

    /// Outgoing mail: SMTP or the development mailbox, links, notices.
    #[command(flatten)]
    pub mail: crate::mail::config::MailArgs,

    /// Where user records are cached: `auto` (in Redis with REDIS_URL,
    /// otherwise in this process's memory), `redis`, `memory` (only for a
    /// user service that runs alone) or `off` (several replicas without
    /// Redis).
    #[arg(long, env = "USER_CACHE", value_enum, default_value = "auto")]
    pub user_cache: crate::cache::CacheMode,

    /// At most about this many users are cached in memory (`USER_CACHE`
    /// `memory`, or `auto` without Redis).
    #[arg(long, env = "USER_CACHE_ENTRIES", default_value = "10000", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub user_cache_entries: u64,

    /// How long a cached user record lives, in seconds.
    #[arg(long = "user-cache-ttl-secs", env = "USER_CACHE_TTL_SECS", value_name = "USER_CACHE_TTL_SECS", default_value = "300", value_parser = clap::value_parser!(u64).range(1..=86_400).map(Duration::from_secs))]
    pub user_cache_ttl: Duration,

    /// The key that seals TOTP secrets at rest: 32 random bytes, base64
    /// (`openssl rand -base64 32`). Keep it out of the database's backups.
    /// Without it (nor FACTOR_KEY_FILE), second factors cannot be enrolled.
    #[arg(long, env = "FACTOR_KEY", hide_env_values = true, value_parser = parse_factor_key)]
    pub factor_key: Option<crate::factors::Sealer>,

    /// A file holding FACTOR_KEY (a mounted Secret); the launcher keeps a
    /// generated one in its data directory.
    #[arg(long, env = "FACTOR_KEY_FILE")]
    pub factor_key_file: Option<std::path::PathBuf>,

    /// The issuer authenticator apps show beside a TOTP code (default: the
    /// product's name, BRANDING_PRODUCT_NAME).
    #[arg(long, env = "TOTP_ISSUER")]
    pub totp_issuer: Option<String>,

    /// How recent a sign-in with a second factor must be, in seconds, for a
    /// user who has one to change their password, email or factors.
    #[arg(long = "step-up-max-age-secs", env = "STEP_UP_MAX_AGE_SECS", value_name = "STEP_UP_MAX_AGE_SECS", default_value = "900", value_parser = clap::value_parser!(u64).range(60..=86_400).map(Duration::from_secs))]
    pub step_up_max_age: Duration,

    /// The WebAuthn relying party id passkeys are registered for (a domain:
    /// PUBLIC_URL's host by default, or `localhost` when that is an IP
    /// address, which browsers refuse as a relying party). Changing it
    /// orphans every passkey registered before.
    #[arg(long, env = "WEBAUTHN_RP_ID")]
    pub webauthn_rp_id: Option<String>,

    /// More origins (comma-separated URLs) whose pages may use passkeys
    /// besides PUBLIC_URL's: within the relying party's domain.
    #[arg(long, env = "WEBAUTHN_ORIGINS", value_delimiter = ',')]
    pub webauthn_origins: Vec<url::Url>,
}

fn parse_factor_key(text: &str) -> Result<crate::factors::Sealer, String> {
    crate::factors::Sealer::from_base64(text).map_err(|e| e.to_string())
}

pub use suite_grpc::config::ConfigError;

impl Config {
    /// The defaults, as `cargo run` with nothing set would have them.
    pub fn defaults() -> Self {
        suite_grpc::config::defaults()
    }

    /// Checks what clap's parsers cannot: cross-field and semantic rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |variable, reason: String| Err(ConfigError::new(variable, reason));
        if let Err(e) = self.hash_params().to_argon2() {
            return err(
                "ARGON2_MEMORY_KIB/ARGON2_ITERATIONS/ARGON2_PARALLELISM",
                e.to_string(),
            );
        }
        if self.jwt_audiences.iter().all(|a| a.trim().is_empty()) {
            return err("JWT_AUDIENCES", "must name at least one audience".into());
        }
        if self.password_hash_concurrency == Some(0) {
            return err("PASSWORD_HASH_CONCURRENCY", "must be at least 1".into());
        }
        if self.mail.require_verified_email && !self.mail.email_verification {
            return err(
                "REQUIRE_VERIFIED_EMAIL",
                "needs EMAIL_VERIFICATION=true (nobody could verify an address otherwise... except by a sign-in, which mails a link: set both)".into(),
            );
        }
        self.factor_sealer()?;
        self.webauthn()?;
        if let Err(e) = self.events.validate() {
            return err("NATS_URL/EVENTS_*", e);
        }
        Ok(())
    }

    /// The mail settings the core follows, waking `wake`'s mailer.
    pub fn mail_policy(
        &self,
        wake: crate::mail::mailer::MailWake,
    ) -> crate::core::email::MailPolicy {
        let m = &self.mail;
        crate::core::email::MailPolicy {
            letters: m.letters(),
            wake,
            verify_on_registration: m.email_verification,
            require_verified_email: m.require_verified_email,
            verification_ttl: m.verification_ttl,
            reset_ttl: m.reset_ttl,
            revert_ttl: m.revert_ttl,
            links_per_hour: m.links_per_hour,
            notice_password_changed: m.notice_password_changed,
            notice_email_changed: m.notice_email_changed,
            notice_new_sign_in: m.notice_new_sign_in,
            notice_account_locked: m.notice_account_locked,
        }
    }

    pub fn hash_params(&self) -> HashParams {
        HashParams {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }

    pub fn throttle(&self) -> ThrottlePolicy {
        ThrottlePolicy {
            free_attempts: self.login_free_attempts,
            account_free_attempts: self.login_account_free_attempts,
            max_lock: self.login_max_lock,
            forget_after: self.login_forget_after,
        }
    }

    /// Password checks in progress at most: those the hashing threads work
    /// on or queue; their database calls get half the pool (at least one
    /// connection), the rest stays for every other call.
    pub fn throttle_limits(&self) -> crate::throttle::ThrottleLimits {
        crate::throttle::ThrottleLimits {
            max_in_flight: self.hash_concurrency() + self.password_hash_queue,
            max_waiting_per_account: usize::try_from(self.login_account_queue)
                .unwrap_or(usize::MAX),
            database_share: (self.pool.database_max_connections / 2).max(1) as usize,
        }
    }

    pub fn token_rules(&self) -> TokenRules {
        self.tokens.rules(
            self.jwt_audiences
                .iter()
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty())
                .collect(),
        )
    }

    pub fn hash_concurrency(&self) -> usize {
        self.password_hash_concurrency
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
    }

    /// The key that seals TOTP secrets: FACTOR_KEY, or FACTOR_KEY_FILE's.
    pub fn factor_sealer(&self) -> Result<Option<crate::factors::Sealer>, ConfigError> {
        if let Some(key) = &self.factor_key {
            return Ok(Some(key.clone()));
        }
        let Some(path) = &self.factor_key_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("FACTOR_KEY_FILE", format!("{}: {e}", path.display())))?;
        crate::factors::Sealer::from_base64(&text)
            .map(Some)
            .map_err(|e| ConfigError::new("FACTOR_KEY_FILE", e.to_string()))
    }

    /// The WebAuthn relying party: PUBLIC_URL's origin (its host, or
    /// `localhost` for an IP address, any port) and WEBAUTHN_ORIGINS.
    pub fn webauthn(&self) -> Result<webauthn_rs::Webauthn, ConfigError> {
        let bad =
            |reason: String| ConfigError::new("WEBAUTHN_RP_ID/WEBAUTHN_ORIGINS/PUBLIC_URL", reason);
        let public = url::Url::parse(&self.mail.public_url).map_err(|e| bad(e.to_string()))?;
        let ip_host = matches!(public.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)));
        let mut origin = public.clone();
        origin.set_path("");
        if ip_host {
            origin
                .set_host(Some("localhost"))
                .map_err(|e| bad(e.to_string()))?;
        }
        let rp_id = match &self.webauthn_rp_id {
            Some(id) => id.clone(),
            None => origin.host_str().unwrap_or("localhost").to_owned(),
        };
        let mut builder = webauthn_rs::WebauthnBuilder::new(&rp_id, &origin)
            .map_err(|e| bad(format!("{rp_id} for {origin}: {e}")))?
            .rp_name(&self.mail.product_name)
            // A development origin on localhost: whichever port it runs on.
            .allow_any_port(rp_id == "localhost");
        for extra in &self.webauthn_origins {
            // Browsers sign only for pages within the relying party's domain.
            let host = extra.host_str().unwrap_or_default();
            if !(host == rp_id || host.ends_with(&format!(".{rp_id}"))) {
                return Err(bad(format!(
                    "{extra} is not within the relying party's domain {rp_id}"
                )));
            }
            builder = builder.append_allowed_origin(extra);
        }
        if origin.scheme() != "https" && rp_id != "localhost" {
            tracing::warn!(origin = %origin, rp_id,
                "passkeys need https (browsers use them over http on localhost only): set PUBLIC_URL to the https address users open");
        }
        builder.build().map_err(|e| bad(e.to_string()))
    }

    pub fn hashing(&self) -> crate::password::HashingOptions {
        crate::password::HashingOptions {
            concurrency: self.hash_concurrency(),
            max_waiting: self.password_hash_queue,
            nice: self.password_hash_nice,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passkeys_take_localhost_for_an_ip_address_and_refuse_origins_outside_the_domain() {
        let mut c = Config::defaults();
        c.mail.public_url = "http://127.0.0.1:8080".into();
        assert!(c.webauthn().is_ok(), "an IP address: localhost instead");
        c.mail.public_url = "https://id.example.com".into();
        c.webauthn_origins = vec![url::Url::parse("https://app.id.example.com").expect("url")];
        assert!(c.webauthn().is_ok(), "a subdomain of the relying party");
        c.webauthn_origins = vec![url::Url::parse("https://app.other.com").expect("url")];
        let refused = c
            .webauthn()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("not within"), "{refused}");
        c.webauthn_origins.clear();
        c.webauthn_rp_id = Some("other.com".into());
        assert!(
            c.webauthn().is_err(),
            "a relying party the origin is not within"
        );
    }
}
