//! The gRPC adapters of the provider: ClientService, ConsentService and
//! OAuthService. Each parses its request into the core's input and turns
//! the answer into its response (errors through `Error`'s one mapping).
//! ClientService and ConsentService are in `clients`.

use super::{
    OAuthCore, OAuthFail,
    authorize::{AuthorizeParams, Next, SignInForm, Step},
    clients::{ClientMetadata, Registered},
    device::{DeviceAuthorization, UserCodeAnswer},
    introspect::{EndSession, EndSessionParams, Introspection, UserInfo},
    token::{TokenParams, Tokens},
};
use crate::error::Error;
use std::sync::Arc;
use suite_grpc::{forwarded::ForwardedArgs, server};
use suite_proto::auth::{
    self as pb, AuthorizationStep, ScopeDescription, o_auth_service_server::OAuthService,
};
use suite_tokens::{Caller, Verifier, grpc::require_caller};
use tonic::{Request, Response, Status};

mod clients;

/// The provider's three services over one core.
#[derive(Clone)]
pub struct OAuthApi {
    core: Arc<OAuthCore>,
    auth: Verifier,
    forwarded: ForwardedArgs,
}

impl OAuthApi {
    pub fn new(core: Arc<OAuthCore>, auth: Verifier, forwarded: ForwardedArgs) -> Self {
        Self {
            core,
            auth,
            forwarded,
        }
    }

    async fn caller<T>(&self, req: &Request<T>) -> Result<Caller, Error> {
        require_caller(&self.auth, req.metadata())
            .await
            .map_err(|refused| Error::TokenRefused(refused.message().to_owned()))
    }
}

pub(super) fn oauth_error(f: OAuthFail) -> pb::OAuthError {
    pb::OAuthError {
        error: f.error.into(),
        error_description: f.description,
    }
}

fn step_proto(next: Next) -> AuthorizationStep {
    use pb::authorization_step::Step as S;
    let step = match next.step {
        Step::Redirect(uri) => S::RedirectUri(uri),
        Step::SignIn(p) => S::SignIn(pb::SignInPage {
            request_id: p.request_id,
            csrf_token: p.csrf_token,
            client_name: p.client_name,
            login_hint: p.login_hint,
            error: p.error,
            error_field: p.error_field,
            retry_after_secs: p.retry_after_secs,
        }),
        Step::Consent(p) => S::Consent(pb::ConsentPage {
            request_id: p.request_id,
            csrf_token: p.csrf_token,
            client_name: p.client_name,
            scopes: p
                .scopes
                .into_iter()
                .map(|(scope, description)| ScopeDescription {
                    scope,
                    description: description.into(),
                })
                .collect(),
            username: p.username,
            user_code: p.user_code,
        }),
        Step::Error(f) => S::Error(pb::ErrorPage {
            error: f.error.into(),
            description: f.description,
        }),
        Step::Device {
            client_name,
            approved,
        } => S::Device(pb::DeviceDecision {
            client_name,
            approved,
        }),
    };
    AuthorizationStep {
        step: Some(step),
        set_session: next
            .set_session
            .map(|(value, max_age_secs)| pb::BrowserSessionCookie {
                value,
                max_age_secs,
            }),
        clear_session: next.clear_session,
    }
}

/// One RPC's answer: the response `work` builds, or its error through
/// `Error`'s one mapping (which `server::reply` logs once).
pub(super) async fn respond<R>(
    work: impl Future<Output = Result<R, Error>>,
) -> Result<Response<R>, Status> {
    server::reply(work.await)
}

/// A protocol answer of the core as a response's `result`: what it grants
/// through `granted`, a refusal as the OAuth error every such result carries.
fn outcome<T, R>(
    answer: Result<T, OAuthFail>,
    granted: impl FnOnce(T) -> R,
    refused: impl FnOnce(pb::OAuthError) -> R,
) -> Option<R> {
    Some(match answer {
        Ok(v) => granted(v),
        Err(f) => refused(oauth_error(f)),
    })
}

impl OAuthApi {
    /// One RPC that only an authenticated caller may make: the caller is
    /// established first, so a refused token answers before the request is
    /// looked at.
    pub(super) async fn for_caller<T, R, Fut>(
        &self,
        req: Request<T>,
        work: impl FnOnce(Caller, T) -> Fut,
    ) -> Result<Response<R>, Status>
    where
        Fut: Future<Output = Result<R, Error>>,
    {
        respond(async {
            let caller = self.caller(&req).await?;
            work(caller, req.into_inner()).await
        })
        .await
    }
}

#[tonic::async_trait]
impl OAuthService for OAuthApi {
    async fn get_provider_configuration(
        &self,
        _req: Request<pb::GetProviderConfigurationRequest>,
    ) -> Result<Response<pb::GetProviderConfigurationResponse>, Status> {
        let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
        Ok(Response::new(pb::GetProviderConfigurationResponse {
            issuer: self.core.oidc_issuer().to_owned(),
            scopes_supported: owned(super::SCOPES),
            id_token_signing_alg_values_supported: owned(&["RS256", "ES256", "EdDSA"]),
            grant_types_supported: owned(&[
                "authorization_code",
                "refresh_token",
                "client_credentials",
                super::device::DEVICE_GRANT,
            ]),
            claims_supported: owned(&[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "azp",
                "at_hash",
                "sid",
                "amr",
                "name",
                "preferred_username",
                "updated_at",
                "email",
                "email_verified",
            ]),
            registration_enabled: self.core.registration_enabled(),
        }))
    }

    async fn authorize(
        &self,
        req: Request<pb::AuthorizeRequest>,
    ) -> Result<Response<pb::AuthorizeResponse>, Status> {
        respond(async {
            let r = req.into_inner();
            let p = r.parameters.unwrap_or_default();
            let params = AuthorizeParams {
                client_id: p.client_id,
                redirect_uri: p.redirect_uri,
                response_type: p.response_type,
                scope: p.scope,
                state: p.state,
                nonce: p.nonce,
                code_challenge: p.code_challenge,
                code_challenge_method: p.code_challenge_method,
                prompt: p.prompt,
                max_age: p.max_age,
                login_hint: p.login_hint,
                response_mode: p.response_mode,
                request_object: p.request_object,
            };
            let next = self
                .core
                .authorize(params, &r.browser_session, &r.browser_binding)
                .await?;
            Ok(pb::AuthorizeResponse {
                step: Some(step_proto(next)),
            })
        })
        .await
    }

    async fn sign_in(
        &self,
        req: Request<pb::SignInRequest>,
    ) -> Result<Response<pb::SignInResponse>, Status> {
        respond(async {
            let ip = self.forwarded.client_of(&req);
            let r = req.into_inner();
            let next = self
                .core
                .sign_in(SignInForm {
                    request_id: r.request_id,
                    csrf_token: r.csrf_token,
                    binding: r.browser_binding,
                    login: r.login,
                    password: r.password,
                    ip_address: ip,
                    user_agent: r.user_agent,
                })
                .await?;
            Ok(pb::SignInResponse {
                step: Some(step_proto(next)),
            })
        })
        .await
    }

    async fn consent(
        &self,
        req: Request<pb::ConsentRequest>,
    ) -> Result<Response<pb::ConsentResponse>, Status> {
        respond(async {
            let r = req.into_inner();
            let next = self
                .core
                .consent(
                    &r.request_id,
                    &r.csrf_token,
                    &r.browser_binding,
                    &r.browser_session,
                    r.allow,
                )
                .await?;
            Ok(pb::ConsentResponse {
                step: Some(step_proto(next)),
            })
        })
        .await
    }

    async fn token(
        &self,
        req: Request<pb::TokenRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        respond(async {
            let user_agent = req
                .metadata()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let r = req.into_inner();
            let c = r.client.unwrap_or_default();
            let params = TokenParams {
                client_id: c.client_id,
                client_secret: c.client_secret,
                method: c.method,
                grant_type: r.grant_type,
                code: r.code,
                redirect_uri: r.redirect_uri,
                code_verifier: r.code_verifier,
                refresh_token: r.refresh_token,
                scope: r.scope,
                device_code: r.device_code,
            };
            use pb::token_response::Result as R;
            let tokens = |t: Tokens| {
                R::Tokens(pb::Tokens {
                    access_token: t.access_token,
                    token_type: "Bearer".into(),
                    expires_in: t.expires_in,
                    refresh_token: t.refresh_token,
                    id_token: t.id_token,
                    scope: t.scope,
                })
            };
            let answer = self.core.token(params, &user_agent).await?;
            Ok(pb::TokenResponse {
                result: outcome(answer, tokens, R::Error),
            })
        })
        .await
    }

    async fn device_authorize(
        &self,
        req: Request<pb::DeviceAuthorizeRequest>,
    ) -> Result<Response<pb::DeviceAuthorizeResponse>, Status> {
        respond(async {
            let r = req.into_inner();
            let c = r.client.unwrap_or_default();
            let answer = self
                .core
                .device_authorize(&c.client_id, &c.client_secret, &c.method, &r.scope)
                .await?;
            use pb::device_authorize_response::Result as R;
            let authorization = |d: DeviceAuthorization| {
                R::Authorization(pb::DeviceAuthorization {
                    device_code: d.device_code,
                    user_code: d.user_code,
                    verification_uri: d.verification_uri,
                    verification_uri_complete: d.verification_uri_complete,
                    expires_in: d.expires_in,
                    interval: d.interval,
                })
            };
            Ok(pb::DeviceAuthorizeResponse {
                result: outcome(answer, authorization, R::Error),
            })
        })
        .await
    }

    async fn verify_user_code(
        &self,
        req: Request<pb::VerifyUserCodeRequest>,
    ) -> Result<Response<pb::VerifyUserCodeResponse>, Status> {
        respond(async {
            let r = req.into_inner();
            use pb::verify_user_code_response::Result as R;
            let result = match self
                .core
                .verify_user_code(&r.user_code, &r.browser_session, &r.browser_binding)
                .await?
            {
                UserCodeAnswer::Next(next) => R::Step(step_proto(next)),
                UserCodeAnswer::Retry(why) => R::RetryError(why),
            };
            Ok(pb::VerifyUserCodeResponse {
                result: Some(result),
            })
        })
        .await
    }

    async fn register_client(
        &self,
        req: Request<pb::RegisterClientRequest>,
    ) -> Result<Response<pb::RegisterClientResponse>, Status> {
        respond(async {
            let m = req.into_inner().metadata.unwrap_or_default();
            let metadata = ClientMetadata {
                redirect_uris: m.redirect_uris,
                client_name: m.client_name,
                grant_types: m.grant_types,
                response_types: m.response_types,
                token_endpoint_auth_method: m.token_endpoint_auth_method,
                scope: m.scope,
                post_logout_redirect_uris: m.post_logout_redirect_uris,
                backchannel_logout_uri: m.backchannel_logout_uri,
            };
            use pb::register_client_response::Result as R;
            let client = |r: Registered| {
                let m = r.metadata;
                R::Client(pb::RegisteredClient {
                    client_id: r.client_id,
                    client_secret: r.secret,
                    client_id_issued_at: r.issued_at,
                    metadata: Some(pb::ClientMetadata {
                        redirect_uris: m.redirect_uris,
                        client_name: m.client_name,
                        grant_types: m.grant_types,
                        response_types: m.response_types,
                        token_endpoint_auth_method: m.token_endpoint_auth_method,
                        scope: m.scope,
                        post_logout_redirect_uris: m.post_logout_redirect_uris,
                        backchannel_logout_uri: m.backchannel_logout_uri,
                    }),
                })
            };
            let answer = self.core.register_dynamic(metadata).await?;
            Ok(pb::RegisterClientResponse {
                result: outcome(answer, client, R::Error),
            })
        })
        .await
    }

    async fn introspect(
        &self,
        req: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        respond(async {
            let r = req.into_inner();
            let c = r.client.unwrap_or_default();
            let answer = self
                .core
                .introspect(&c.client_id, &c.client_secret, &c.method, &r.token)
                .await?;
            use pb::introspect_response::Result as R;
            let introspection = |found: Option<Introspection>| {
                R::Introspection(match found {
                    None => pb::Introspection::default(),
                    Some(i) => pb::Introspection {
                        active: true,
                        scope: i.scope,
                        client_id: i.client_id,
                        username: i.username,
                        token_type: i.token_type.into(),
                        exp: i.exp,
                        iat: i.iat,
                        sub: i.sub,
                        aud: i.aud,
                        iss: i.iss,
                        jti: i.jti,
                        sid: i.sid,
                    },
                })
            };
            Ok(pb::IntrospectResponse {
                result: outcome(answer, introspection, R::Error),
            })
        })
        .await
    }

    async fn revoke(
        &self,
        req: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        respond(async {
            let r = req.into_inner();
            let c = r.client.unwrap_or_default();
            let error = self
                .core
                .revoke(&c.client_id, &c.client_secret, &c.method, &r.token)
                .await?;
            Ok(pb::RevokeResponse {
                error: error.map(oauth_error),
            })
        })
        .await
    }

    async fn user_info(
        &self,
        req: Request<pb::UserInfoRequest>,
    ) -> Result<Response<pb::UserInfoResponse>, Status> {
        respond(async {
            let answer = self.core.user_info(&req.get_ref().access_token).await?;
            use pb::user_info_response::Result as R;
            let claims = |i: UserInfo| {
                R::Claims(pb::UserInfoClaims {
                    sub: i.sub,
                    name: i.name,
                    preferred_username: i.preferred_username,
                    updated_at: i.updated_at,
                    email: i.email,
                    email_verified: i.email_verified,
                })
            };
            Ok(pb::UserInfoResponse {
                result: outcome(answer, claims, R::Error),
            })
        })
        .await
    }

    async fn end_session(
        &self,
        req: Request<pb::EndSessionRequest>,
    ) -> Result<Response<pb::EndSessionResponse>, Status> {
        respond(async {
            let r = req.into_inner();
            let (answer, clear_session) = self
                .core
                .end_session(EndSessionParams {
                    id_token_hint: r.id_token_hint,
                    client_id: r.client_id,
                    post_logout_redirect_uri: r.post_logout_redirect_uri,
                    state: r.state,
                    browser_session: r.browser_session,
                    browser_binding: r.browser_binding,
                    confirmed: r.confirmed,
                    csrf_token: r.csrf_token,
                })
                .await?;
            use pb::end_session_response::Result as R;
            let result = match answer {
                EndSession::Redirect(uri) => R::RedirectUri(uri),
                EndSession::SignedOut => R::SignedOut(true),
                EndSession::Confirm {
                    csrf_token,
                    client_name,
                    username,
                } => R::Confirm(pb::SignOutConfirmPage {
                    csrf_token,
                    client_name,
                    username,
                }),
                EndSession::Error(f) => R::Error(pb::ErrorPage {
                    error: f.error.into(),
                    description: f.description,
                }),
            };
            Ok(pb::EndSessionResponse {
                result: Some(result),
                clear_session,
            })
        })
        .await
    }
}
