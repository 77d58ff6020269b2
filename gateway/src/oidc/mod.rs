//! The OAuth 2.0 / OpenID Connect face of the provider: the discovery
//! document, the token, userinfo, introspection, revocation and logout
//! endpoints, and the browser pages of the authorize flow. Each is a thin
//! HTTP adapter over one `suite.auth.v1.OAuthService` call: the auth
//! service decides, these speak RFC 6749 / OpenID Connect to browsers and
//! relying parties. Beside them, the account pages that mailed links open
//! ([`account`]), over the user service's UserService, in the same look.

pub mod account;
pub mod branding;
pub mod client_auth;
pub mod cookies;
pub mod cors;
pub mod csrf;
pub mod device;
pub mod endpoints;
pub mod form;
pub mod pages;
pub mod registration;
pub mod render;

use crate::{
    contract::routes::RateClass,
    http::{problem::Problem, request_id},
    policy::rate_limit::RateLimits,
};
use axum::{
    Router,
    extract::{ConnectInfo, FromRequestParts},
    middleware::from_fn,
    response::{IntoResponse, Response},
    routing::get,
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use std::{net::SocketAddr, sync::Arc, time::Duration};
use suite_grpc::balance::Balanced;
use suite_proto::{
    auth::o_auth_service_client::OAuthServiceClient, user::user_service_client::UserServiceClient,
};
use suite_telemetry::grpc_client::{TraceClientLayer, TracedChannel};

/// The paths served here (the discovery document names them under the issuer).
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub const TOKEN_PATH: &str = "/oauth2/token";
pub const DEVICE_AUTHORIZATION_PATH: &str = "/oauth2/device_authorization";
pub const DEVICE_PATH: &str = "/oauth2/device";
pub const REGISTER_PATH: &str = "/oauth2/register";
pub const USERINFO_PATH: &str = "/oauth2/userinfo";
pub const INTROSPECT_PATH: &str = "/oauth2/introspect";
pub const REVOKE_PATH: &str = "/oauth2/revoke";
pub const LOGOUT_PATH: &str = "/oauth2/logout";
pub const SIGNIN_PATH: &str = "/oauth2/signin";
/// The sign-in page's second step: a code of the user's second factor.
pub const SIGNIN_FACTOR_PATH: &str = "/oauth2/signin/factor";
/// The sign-in page's passkey (passwordless).
pub const SIGNIN_PASSKEY_PATH: &str = "/oauth2/signin/passkey";
pub const CONSENT_PATH: &str = "/oauth2/consent";
/// The pages' one script: passkeys.
pub const PASSKEY_SCRIPT_PATH: &str = "/oauth2/assets/passkey.js";
pub const STYLESHEET_PATH: &str = "/oauth2/assets/suite.css";
pub const LOGO_PATH: &str = "/oauth2/assets/logo";

/// Every path served here: each its own route in spans and metrics.
pub const ROUTES: &[&str] = &[
    DISCOVERY_PATH,
    AUTHORIZE_PATH,
    TOKEN_PATH,
    DEVICE_AUTHORIZATION_PATH,
    DEVICE_PATH,
    REGISTER_PATH,
    USERINFO_PATH,
    INTROSPECT_PATH,
    REVOKE_PATH,
    LOGOUT_PATH,
    SIGNIN_PATH,
    SIGNIN_FACTOR_PATH,
    SIGNIN_PASSKEY_PATH,
    CONSENT_PATH,
    STYLESHEET_PATH,
    PASSKEY_SCRIPT_PATH,
    LOGO_PATH,
    account::VERIFY_EMAIL_PATH,
    account::REVERT_EMAIL_PATH,
    account::FORGOT_PASSWORD_PATH,
    account::RESET_PASSWORD_PATH,
    account::security::ACCOUNT_PATH,
    account::security::SIGN_IN_PATH,
    account::security::SIGNED_IN_PATH,
    account::security::TOTP_PATH,
    account::security::TOTP_CONFIRM_PATH,
    account::security::DELETE_FACTOR_PATH,
    account::security::RECOVERY_CODES_PATH,
    account::security::SIGN_OUT_EVERYWHERE_PATH,
    account::security::END_SESSION_PATH,
    account::security::PASSKEY_PATH,
    account::security::RENAME_FACTOR_PATH,
    account::security::TOKENS_PATH,
    account::security::REVOKE_TOKEN_PATH,
];

/// What the OAuth endpoints and pages share.
pub struct OidcState {
    /// The auth service's channel (the one the contract's routes take).
    pub auth: Balanced,
    pub trace: TraceClientLayer,
    /// The user service's channel (the contract's, shared) and its trace
    /// layer: the account pages' calls.
    pub user: Balanced,
    pub user_trace: TraceClientLayer,
    pub limits: Arc<RateLimits>,
    /// Each call's time budget.
    pub budget: Duration,
    pub forwarding_secret: Option<secrecy::SecretString>,
    /// The discovery document, rendered on first need: the provider's
    /// configuration changes only with a redeployment of the auth service.
    pub discovery: tokio::sync::OnceCell<bytes::Bytes>,
    pub branding: branding::Branding,
}

pub type Shared = Arc<OidcState>;

/// Why the OAuth face cannot start.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("{0}: {1}")]
    Branding(&'static str, String),
}

impl OidcState {
    /// An OAuthService client on the auth channel, traced.
    pub fn client(&self) -> OAuthServiceClient<TracedChannel> {
        OAuthServiceClient::new(self.trace.wrap(self.auth.channel()))
    }

    /// A UserService client on the user channel, traced (the account pages).
    pub fn users(&self) -> UserServiceClient<TracedChannel> {
        UserServiceClient::new(self.user_trace.wrap(self.user.channel()))
    }

    /// A request to a service (the auth service's, or the user service's
    /// for the account pages): the budget as its deadline, the
    /// request id, and the client's address (which the password throttle
    /// counts by), proven when the gateway shares a secret with the services.
    pub fn request<T>(&self, message: T, client: std::net::IpAddr) -> tonic::Request<T> {
        let mut metadata =
            crate::upstream::call::metadata(&HeaderMap::new(), request_id::current(), client);
        if let Some(secret) = &self.forwarding_secret {
            suite_grpc::forwarded::prove(&mut metadata, secret);
        }
        let mut request = tonic::Request::from_parts(metadata, tonic::Extensions::new(), message);
        request.set_timeout(self.budget);
        request
    }

    /// The client's address, or `Err(wait)` when it is over its bucket of `class`.
    pub async fn admit(
        &self,
        peer: SocketAddr,
        headers: &HeaderMap,
        class: RateClass,
    ) -> Result<std::net::IpAddr, Duration> {
        let client = self.limits.client(peer, headers);
        self.limits.check(client, class).await.map(|()| client)
    }
}

/// A handler's work, whose early answers (over its bucket, a malformed
/// request, a failed call) are its `Err`s: either is the answer.
pub async fn respond<A>(work: impl Future<Output = Result<A, A>>) -> A {
    work.await.unwrap_or_else(|early| early)
}

/// A 429 problem with `Retry-After` for the JSON endpoints.
pub fn too_many(wait: Duration) -> Response {
    let secs = suite_grpc::status::whole_seconds(wait);
    let mut p = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests; try again in {secs} s"),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        p = p.with_header(header::RETRY_AFTER, v);
    }
    p.into_response()
}

/// The peer address the server recorded (unspecified only when served
/// without one, as `oneshot` tests do).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |ConnectInfo(a)| *a),
        ))
    }
}

/// What every handler here starts from: the shared state, the address the
/// request came from and its headers. Together they are what a rate bucket
/// counts by (the peer, or the client the headers name behind a trusted
/// proxy), so the helpers that admit a request take this one value.
pub struct Visit {
    pub oidc: Shared,
    pub peer: SocketAddr,
    pub headers: HeaderMap,
}

impl FromRequestParts<Shared> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let Peer(peer) = Peer::from_request_parts(parts, state).await?;
        Ok(Self {
            oidc: Arc::clone(state),
            peer,
            headers: parts.headers.clone(),
        })
    }
}

impl Visit {
    /// The client's address, or `Err(wait)` when it is over its bucket of `class`.
    pub async fn admit(&self, class: RateClass) -> Result<std::net::IpAddr, Duration> {
        self.oidc.admit(self.peer, &self.headers, class).await
    }
}

/// HEAD on a page whose GET acts (starts an authorization request, ends a
/// session): axum would run the GET and drop its body, so a link checker or
/// a mail scanner's HEAD would act too. Refused instead.
async fn no_head() -> impl axum::response::IntoResponse {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        [(axum::http::header::ALLOW, "GET, POST")],
    )
}

/// The routes of the OAuth face.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route(DISCOVERY_PATH, get(endpoints::discovery))
        .route(TOKEN_PATH, axum::routing::post(endpoints::token))
        .route(
            DEVICE_AUTHORIZATION_PATH,
            axum::routing::post(endpoints::device_authorization),
        )
        .route(
            DEVICE_PATH,
            get(device::device_get).post(device::device_post),
        )
        .route(REGISTER_PATH, axum::routing::post(registration::register))
        .route(
            USERINFO_PATH,
            get(endpoints::userinfo_get).post(endpoints::userinfo_post),
        )
        .route(INTROSPECT_PATH, axum::routing::post(endpoints::introspect))
        .route(REVOKE_PATH, axum::routing::post(endpoints::revoke))
        .route(
            AUTHORIZE_PATH,
            get(pages::authorize).post(pages::authorize).head(no_head),
        )
        .route(SIGNIN_PATH, axum::routing::post(pages::sign_in))
        .route(
            SIGNIN_FACTOR_PATH,
            axum::routing::post(pages::sign_in_factor),
        )
        .route(
            SIGNIN_PASSKEY_PATH,
            axum::routing::post(pages::sign_in_passkey),
        )
        .route(CONSENT_PATH, axum::routing::post(pages::consent))
        .route(
            LOGOUT_PATH,
            get(pages::logout).post(pages::logout).head(no_head),
        )
        // The account pages of mailed links: public (the link's token, or
        // nothing, is what they act on), each GET a page that changes
        // nothing, each POST its action.
        .route(
            account::VERIFY_EMAIL_PATH,
            get(account::verify_email_page).post(account::verify_email),
        )
        .route(
            account::REVERT_EMAIL_PATH,
            get(account::revert_email_page).post(account::revert_email),
        )
        .route(
            account::FORGOT_PASSWORD_PATH,
            get(account::forgot_password_page).post(account::forgot_password),
        )
        .route(
            account::RESET_PASSWORD_PATH,
            get(account::reset_password_page).post(account::reset_password),
        )
        // The account area of the signed-in user (account::security):
        // behind the browser session; its sign-in's GET starts a request.
        .route(
            account::security::ACCOUNT_PATH,
            get(account::security::account_page),
        )
        .route(
            account::security::SIGN_IN_PATH,
            get(account::security::sign_in).head(no_head),
        )
        .route(
            account::security::SIGNED_IN_PATH,
            get(account::security::signed_in),
        )
        .route(
            account::security::TOTP_PATH,
            axum::routing::post(account::security::enroll_totp),
        )
        .route(
            account::security::TOTP_CONFIRM_PATH,
            axum::routing::post(account::security::confirm_totp),
        )
        .route(
            account::security::DELETE_FACTOR_PATH,
            axum::routing::post(account::security::delete_factor),
        )
        .route(
            account::security::RECOVERY_CODES_PATH,
            axum::routing::post(account::security::regenerate_recovery_codes),
        )
        .route(
            account::security::SIGN_OUT_EVERYWHERE_PATH,
            axum::routing::post(account::security::sign_out_everywhere),
        )
        .route(
            account::security::END_SESSION_PATH,
            axum::routing::post(account::security::end_session),
        )
        .route(
            account::security::PASSKEY_PATH,
            axum::routing::post(account::security::add_passkey),
        )
        .route(
            account::security::RENAME_FACTOR_PATH,
            axum::routing::post(account::security::rename_factor),
        )
        .route(
            account::security::TOKENS_PATH,
            axum::routing::post(account::security::create_token),
        )
        .route(
            account::security::REVOKE_TOKEN_PATH,
            axum::routing::post(account::security::revoke_token),
        )
        .route(STYLESHEET_PATH, get(branding::stylesheet))
        .route(PASSKEY_SCRIPT_PATH, get(pages::passkey_script))
        .route(LOGO_PATH, get(branding::logo))
        // Every answer carries the request id, as the API's do.
        .layer(from_fn(request_id::request_id))
        .with_state(state)
}
