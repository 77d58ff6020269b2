//! Assembles and runs the gRPC server: store, signing keys, the user
//! service's client, token verification, and the suite's server runtime
//! (health, reflection, limits, drain); sessions are pruned meanwhile.

use crate::{
    config::{Config, ConfigError},
    core::AuthCore,
    error::StartError,
    grpc::AuthApi,
    keys::KeyRing,
    oauth::{OAuthCore, grpc::OAuthApi},
    pat::{LocalExchange, TokenCore, grpc::TokenApi},
    service_token::ServiceTokens,
    store::{self, AuthStore},
    user_client::UserDirectory,
};
use std::{future::Future, sync::Arc, time::Duration};
use suite_db::Database;
use suite_events::{Stream, revocations::Gate};
use suite_proto::auth::{
    auth_service_server::AuthServiceServer, client_service_server::ClientServiceServer,
    consent_service_server::ConsentServiceServer, o_auth_service_server::OAuthServiceServer,
    token_service_server::TokenServiceServer,
};
use suite_runtime::runner::Service;
use suite_tokens::{
    Verifier,
    jwks::{JwksSource, KeyCache},
};
use tokio::net::TcpListener;
use tonic::service::Routes;

/// How often dead sessions and stale login failures are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The gRPC services of this server (for health and reflection).
const SERVICES: &[&str] = &[
    "suite.auth.v1.AuthService",
    "suite.auth.v1.ClientService",
    "suite.auth.v1.ConsentService",
    "suite.auth.v1.OAuthService",
    "suite.auth.v1.TokenService",
];

/// Opens the configured database (lazily: nothing connects yet).
pub fn open_database(config: &Config) -> Result<Database, StartError> {
    Database::open(
        &config.database_url,
        "suite-auth",
        config.pool.settings(),
        &store::MIGRATIONS,
    )
    .map_err(StartError::Store)
}

/// The store on the configured database.
pub fn open_store(config: &Config) -> Result<Arc<dyn AuthStore>, StartError> {
    Ok(store::open(&open_database(config)?))
}

/// Serves the auth service on `listener` until `shutdown` completes, then
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
    // Generating an RSA key (first start without one) takes a while.
    let keys = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || KeyRing::load(&config))
            .await
            .map_err(|e| StartError::Keys(e.to_string()))??
    };
    let keys = Arc::new(keys);
    let jwks = keys.jwks().map_err(|e| StartError::Keys(e.to_string()))?;
    tracing::info!(
        active_kid = keys.active().kid(),
        keys = jwks.keys.len(),
        "signing keys loaded"
    );

    // This service verifies the tokens it issued with its own public keys.
    let own_keys = KeyCache::new(Some(JwksSource::Static(jwks)), Duration::from_secs(5));
    own_keys
        .load()
        .await
        .map_err(|e| StartError::Keys(e.to_string()))?;
    let revocations = config.tokens.revocations();
    let name = <AuthBinary as Service>::NAME;
    let wired = (config.events)
        .wire(name, &database, Stream::Auth, revocations.clone())
        .await?;
    let (bus, events) = (wired.bus.clone(), wired.wake.clone());
    let users = UserDirectory::new(
        &config.user_service_url,
        config.user_service_connect_timeout,
        config.user_service_timeout,
        &config.upstream,
        ServiceTokens::new(
            keys.active().clone(),
            config.tokens.jwt_issuer.clone(),
            config.user_service_audience.clone(),
        ),
    )
    .map_err(|reason| ConfigError::new("USER_SERVICE_URL", reason))?;
    let core = Arc::new(AuthCore::new(
        store.clone(),
        users,
        keys,
        config.settings(),
        events,
        crate::store::challenges::open(&database),
    ));

    let tokens = Arc::new(TokenCore::new(
        crate::pat::store::open(&database),
        core.clone(),
        config.pat_max_lifetime,
        config.step_up_max_age,
    ));
    // Personal access tokens are exchanged here in process.
    let auth = Verifier::new(
        own_keys,
        config
            .tokens
            .rules(vec![config.access_token_audience.clone()]),
    )
    .with_revocations(revocations.clone())
    .with_exchange(Arc::new(LocalExchange(tokens.clone())));
    let provider = Arc::new(
        OAuthCore::new(crate::oauth::open_store(&database), core.clone())
            .map_err(|e| StartError::Keys(e.to_string()))?,
    );
    let consuming = tokio::spawn(crate::consumer::run(
        bus,
        core.clone(),
        provider.clone(),
        tokens.clone(),
        database.migrated(),
    ));
    let oauth = OAuthApi::new(provider.clone(), auth.clone(), config.forwarded.clone());
    let token_api = TokenApi::new(tokens.clone(), auth.clone());
    let max = config.grpc.max_message_bytes();
    let api = AuthServiceServer::new(AuthApi::new(
        core.clone(),
        provider.clone(),
        auth,
        config.forwarded.clone(),
    ))
    .max_decoding_message_size(max);
    let mut routes = Routes::new(api);
    routes = routes
        .add_service(ClientServiceServer::new(oauth.clone()).max_decoding_message_size(max))
        .add_service(ConsentServiceServer::new(oauth.clone()).max_decoding_message_size(max))
        .add_service(OAuthServiceServer::new(oauth).max_decoding_message_size(max))
        .add_service(TokenServiceServer::new(token_api).max_decoding_message_size(max));
    let logouts =
        crate::oauth::backchannel::LogoutSender::new(provider.clone(), config.backchannel())
            .map_err(|e| StartError::Logouts(e.to_string()))?;
    let sending_logouts = tokio::spawn(logouts.run(database.migrated()));
    let pruning = tokio::spawn(async move {
        tokio::join!(
            suite_runtime::prune::every(PRUNE_EVERY, "dead sessions", move || {
                let core = core.clone();
                async move { core.prune().await }
            }),
            suite_runtime::prune::every(
                PRUNE_EVERY,
                "expired OAuth requests, codes and browser sessions",
                move || {
                    let provider = provider.clone();
                    async move { provider.prune().await }
                },
            ),
            suite_runtime::prune::every(
                PRUNE_EVERY,
                "long-dead personal access tokens",
                move || {
                    let tokens = tokens.clone();
                    async move { tokens.prune().await }
                },
            ),
        )
    });
    tracing::info!(database = %config.database_url, "auth store opened");
    let result = suite_grpc::server::serve(
        routes,
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
    sending_logouts.abort();
    consuming.abort();
    // What in-flight calls wrote is in the outbox: the next start publishes
    // whatever this one did not.
    drop(wired);
    Ok(result?)
}

suite_runtime::grpc_service_with_database! {
    /// The `suite-auth` binary (not the generated `AuthService` trait, which
    /// `grpc::AuthApi` implements).
    pub struct AuthBinary: "suite-auth", "The suite's auth service (gRPC)", SERVICES;
    Config, StartError, serve, open_database
}
