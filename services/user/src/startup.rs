//! Assembles and runs the gRPC server: store, hasher, token verification,
//! and the suite's server runtime (health, reflection, limits, drain).

use crate::{
    cache::UserCache,
    config::Config,
    core::UserCore,
    error::StartError,
    grpc::UserApi,
    mail::mailer::{MailWake, Mailer, MailerSettings},
    password::PasswordHasher,
    store,
    throttle::Throttle,
};
use std::{future::Future, sync::Arc};
use suite_db::Database;
use suite_events::{Stream, revocations::Gate, slots::Slots};
use suite_proto::user::user_service_server::UserServiceServer;
use suite_runtime::runner::Service;
use suite_tokens::{Verifier, jwks::KeyCache};
use tokio::net::TcpListener;
use tonic::service::Routes;

/// How often stale password-failure counters and spent link tokens are
/// deleted.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// The gRPC services of this server (for health and reflection).
const SERVICES: &[&str] = &["suite.user.v1.UserService"];

/// Opens the configured database (lazily: nothing connects yet).
pub fn open_database(config: &Config) -> Result<Database, StartError> {
    Database::open(
        &config.database_url,
        "suite-user",
        config.pool.settings(),
        &store::MIGRATIONS,
    )
    .map_err(StartError::Store)
}

/// Serves the user service on `listener` until `shutdown` completes, then
/// turns NOT_SERVING and lets in-flight calls finish.
pub async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    config.validate()?;
    crate::metrics::register();
    let database = open_database(&config)?;
    let store = store::open(&database);
    let hasher = PasswordHasher::new(
        config.hash_params(),
        config.password_min_score,
        config.hashing(),
    )
    .await
    .map_err(|e| StartError::Hasher(e.to_string()))?
    .with_failure_floor_at_least(config.failure_floor_at_least);
    let revocations = config.tokens.revocations();
    let name = <UserBinary as Service>::NAME;
    let wired = (config.events)
        .wire(name, &database, Stream::User, revocations.clone())
        .await?;
    let (bus, events) = (wired.bus.clone(), wired.wake.clone());
    let keys = KeyCache::load_from(config.keys.jwks.clone(), config.keys.jwks_refresh_min).await;
    let mut auth = Verifier::new(keys, config.token_rules()).with_revocations(revocations.clone());
    // Personal access tokens sent straight to this service are exchanged
    // where the keys come from (JWKS=grpc://…, the auth service).
    if let Some(exchange) = suite_tokens::grpc::GrpcExchange::of_jwks(config.keys.jwks.as_ref()) {
        auth = auth.with_exchange(std::sync::Arc::new(exchange));
    }
    let transport = config
        .mail
        .transport()
        .map_err(|e| StartError::Mail(e.to_string()))?;
    let mail_wake = MailWake::default();
    let mailing = Mailer::new(
        crate::mail::queue::open(&database),
        transport,
        config.mail.mail_from.clone(),
        MailerSettings::new(config.mail.send_timeout, config.mail.give_up_after),
    )
    .spawn(mail_wake.clone(), database.migrated());
    let policy = config.mail_policy(mail_wake);
    let throttle = Throttle::new(
        store.clone(),
        config.throttle(),
        config.throttle_limits(),
        events.clone(),
    )
    .with_lock_notices(policy.notice_account_locked.then(|| policy.clone()));
    let redis = config
        .redis
        .connect()
        .map_err(|e| StartError::Redis(e.to_string()))?;
    let cache = Arc::new(user_cache(&config, redis)?);
    tracing::info!(cache = cache.kind(), "user record cache");
    let caching = crate::cache::follow_events(bus.clone(), cache.clone());
    let factors = crate::core::factors::FactorPolicy {
        store: crate::store::factors::open(&database),
        sealer: config.factor_sealer()?,
        issuer: config
            .totp_issuer
            .clone()
            .unwrap_or_else(|| config.mail.product_name.clone()),
        step_up_max_age: config.step_up_max_age,
        webauthn: Some(Arc::new(config.webauthn()?)),
    };
    let core = Arc::new(UserCore::new(
        store.clone(),
        hasher,
        throttle,
        events,
        config.events.record,
        cache,
        crate::core::Policies {
            mail: policy,
            factors,
        },
    ));

    let api = UserServiceServer::new(UserApi::new(
        core.clone(),
        auth,
        config.forwarded.clone(),
        bus,
        Slots::new(
            config.max_event_streams as usize,
            config.max_event_streams_per_user as usize,
        ),
    ))
    .max_decoding_message_size(config.grpc.max_message_bytes());
    let pruning = tokio::spawn(suite_runtime::prune::every(
        PRUNE_EVERY,
        "password-failure counters, link tokens and unconfirmed factors",
        move || {
            let core = core.clone();
            async move { core.prune().await }
        },
    ));
    tracing::info!(database = %config.database_url, "user store opened");
    let result = suite_grpc::server::serve(
        Routes::new(api),
        config.grpc.options(name, SERVICES),
        Arc::new(Gate {
            inner: Arc::new(database),
            revocations,
        }),
        listener,
        shutdown,
    )
    .await;
    pruning.abort();
    caching.abort();
    // In-flight changes are done: what they wrote is in the outbox, and the
    // next start publishes whatever this one did not.
    drop(wired);
    // What the mailer did not send waits in the outbox for the next start.
    mailing.abort();
    Ok(result?)
}

suite_runtime::grpc_service_with_database! {
    /// The `suite-user` binary (not the generated `UserService` trait, which
    /// `grpc::UserApi` implements).
    pub struct UserBinary: "suite-user", "The suite's user service (gRPC)", SERVICES;
    Config, StartError, serve, open_database
}

/// The user record cache `USER_CACHE` asks for.
fn user_cache(config: &Config, redis: Option<suite_redis::Redis>) -> Result<UserCache, StartError> {
    use crate::cache::CacheMode;
    let ttl = config.user_cache_ttl;
    let entries = usize::try_from(config.user_cache_entries).unwrap_or(usize::MAX);
    Ok(match (config.user_cache, redis) {
        (CacheMode::Off, _) => UserCache::new(None, ttl),
        (CacheMode::Memory, _) | (CacheMode::Auto, None) => UserCache::in_memory(entries, ttl),
        (CacheMode::Redis | CacheMode::Auto, Some(redis)) => UserCache::new(Some(redis), ttl),
        (CacheMode::Redis, None) => {
            return Err(StartError::Redis("USER_CACHE=redis needs REDIS_URL".into()));
        }
    })
}
