//! The token settings every verifier shares (flattened into each binary's
//! `clap` config), so the variables mean the same everywhere. Audiences are
//! each binary's own: the gateway accepts one, a service several.

use crate::{jwks::JwksSource, rules::TokenRules};
use clap::builder::TypedValueParser as _;
use std::{str::FromStr, time::Duration};

/// What a token must say, beside its audience.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// The `iss` every access token must carry.
    #[arg(long, env = "JWT_ISSUER", default_value = "suite-auth")]
    pub jwt_issuer: String,

    /// Allowed clock skew for `exp`/`nbf`, in seconds.
    #[arg(long, env = "JWT_LEEWAY_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub jwt_leeway_secs: u64,

    /// Lifetime of the access tokens the auth service issues, in seconds.
    /// Verifiers remember a revocation this long (plus the leeway): set it
    /// alike everywhere.
    #[arg(long = "access-token-ttl-secs", env = "ACCESS_TOKEN_TTL_SECS", value_name = "ACCESS_TOKEN_TTL_SECS", default_value = "900", value_parser = clap::value_parser!(u64).range(30..=86_400).map(Duration::from_secs))]
    pub access_token_ttl: Duration,

    /// Whether an admin acts as one only when signed in with a second
    /// factor (the token's `amr` has `mfa`); without one, their token acts
    /// as a plain user's, which may still set up a factor. Set it alike on
    /// every service and gateway.
    #[arg(long, env = "ADMINS_NEED_SECOND_FACTOR", default_value_t = false, action = clap::ArgAction::Set)]
    pub admins_need_second_factor: bool,
}

impl TokenArgs {
    /// An empty revocation set for tokens of this lifetime: what it
    /// refuses can be forgotten once such a token would have expired.
    pub fn revocations(&self) -> crate::Revocations {
        crate::Revocations::new(self.access_token_ttl + Duration::from_secs(self.jwt_leeway_secs))
    }

    /// The rules for tokens naming one of `audiences`.
    pub fn rules(&self, audiences: Vec<String>) -> TokenRules {
        TokenRules {
            issuer: self.jwt_issuer.clone(),
            audiences,
            leeway_secs: self.jwt_leeway_secs,
            admins_need_second_factor: self.admins_need_second_factor,
        }
    }
}

/// Where a verifier's trusted public keys come from.
#[derive(Debug, Clone, clap::Args)]
pub struct JwksArgs {
    /// Trusted public keys: a JWKS file path or `http://` URL (re-read when an
    /// unknown key id shows up), `grpc://host:port` (the auth service's
    /// GetJwks) or an inline JWKS JSON document.
    #[arg(long, env = "JWKS", value_parser = JwksSource::from_str)]
    pub jwks: Option<JwksSource>,

    /// Shortest gap, in seconds, between two JWKS reloads triggered by tokens
    /// naming an unknown key id (a new key is picked up at most this late).
    #[arg(long = "jwks-refresh-min-secs", env = "JWKS_REFRESH_MIN_SECS", value_name = "JWKS_REFRESH_MIN_SECS", default_value = "5", value_parser = clap::value_parser!(u64).range(0..=3600).map(Duration::from_secs))]
    pub jwks_refresh_min: Duration,
}
