//! The gRPC adapters of the provider: ClientService, ConsentService and
//! OAuthService. Each parses its request into the core's input and turns
//! the answer into its response (errors through `Error`'s one mapping).
//! ClientService and ConsentService are in `clients`.

use super::{
    OAuthCore,
    authorize::{FactorForm, PasskeyForm, SignInForm},
    device::UserCodeAnswer,
};
use crate::error::Error;
use std::sync::Arc;
use suite_grpc::{forwarded::ForwardedArgs, server};
use suite_proto::auth::{self as pb, o_auth_service_server::OAuthService};
use suite_tokens::{Caller, Verifier, grpc::require_caller};
use tonic::{Request, Response, Status};

mod clients;
mod convert;

use convert::{client_auth, introspection, outcome};

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

/// One RPC's answer: the response `work` builds, or its error through
/// `Error`'s one mapping (which `server::reply` logs once).
pub(super) async fn respond<R>(
    work: impl Future<Output = Result<R, Error>>,
) -> Result<Response<R>, Status> {
    server::reply(work.await)
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
                "acr",
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
            let params = r.parameters.unwrap_or_default().into();
            let next = self
                .core
                .authorize(params, &r.browser_session, &r.browser_binding)
                .await?;
            Ok(pb::AuthorizeResponse {
                step: Some(next.into()),
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
                step: Some(next.into()),
            })
        })
        .await
    }

    async fn sign_in_factor(
        &self,
        req: Request<pb::SignInFactorRequest>,
    ) -> Result<Response<pb::SignInFactorResponse>, Status> {
        respond(async {
            let ip = self.forwarded.client_of(&req);
            let r = req.into_inner();
            let next = self
                .core
                .sign_in_factor(FactorForm {
                    request_id: r.request_id,
                    csrf_token: r.csrf_token,
                    binding: r.browser_binding,
                    challenge: r.challenge,
                    code: r.code,
                    passkey_assertion: r.passkey_assertion_json,
                    ip_address: ip,
                    user_agent: r.user_agent,
                })
                .await?;
            Ok(pb::SignInFactorResponse {
                step: Some(next.into()),
            })
        })
        .await
    }

    async fn sign_in_passkey(
        &self,
        req: Request<pb::SignInPasskeyRequest>,
    ) -> Result<Response<pb::SignInPasskeyResponse>, Status> {
        respond(async {
            let ip = self.forwarded.client_of(&req);
            let r = req.into_inner();
            let next = self
                .core
                .sign_in_passkey(PasskeyForm {
                    request_id: r.request_id,
                    csrf_token: r.csrf_token,
                    binding: r.browser_binding,
                    ceremony: r.ceremony,
                    assertion: r.assertion_json,
                    ip_address: ip,
                    user_agent: r.user_agent,
                })
                .await?;
            Ok(pb::SignInPasskeyResponse {
                step: Some(next.into()),
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
                step: Some(next.into()),
            })
        })
        .await
    }

    async fn token(
        &self,
        req: Request<pb::TokenRequest>,
    ) -> Result<Response<pb::TokenResponse>, Status> {
        use pb::token_response::Result as R;
        respond(async {
            let user_agent = req
                .metadata()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let answer = self
                .core
                .token(req.into_inner().into(), &user_agent)
                .await?;
            let result = outcome(answer, |t| R::Tokens(t.into()), R::Error);
            Ok(pb::TokenResponse { result })
        })
        .await
    }

    async fn device_authorize(
        &self,
        req: Request<pb::DeviceAuthorizeRequest>,
    ) -> Result<Response<pb::DeviceAuthorizeResponse>, Status> {
        use pb::device_authorize_response::Result as R;
        respond(async {
            let r = req.into_inner();
            let client = client_auth(r.client);
            let answer = self.core.device_authorize(&client, &r.scope).await?;
            let result = outcome(answer, |d| R::Authorization(d.into()), R::Error);
            Ok(pb::DeviceAuthorizeResponse { result })
        })
        .await
    }

    async fn verify_user_code(
        &self,
        req: Request<pb::VerifyUserCodeRequest>,
    ) -> Result<Response<pb::VerifyUserCodeResponse>, Status> {
        use pb::verify_user_code_response::Result as R;
        respond(async {
            let r = req.into_inner();
            let answer = self
                .core
                .verify_user_code(&r.user_code, &r.browser_session, &r.browser_binding)
                .await?;
            let result = match answer {
                UserCodeAnswer::Next(next) => R::Step((*next).into()),
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
        use pb::register_client_response::Result as R;
        respond(async {
            let metadata = req.into_inner().metadata.unwrap_or_default().into();
            let answer = self.core.register_dynamic(metadata).await?;
            let result = outcome(answer, |r| R::Client(r.into()), R::Error);
            Ok(pb::RegisterClientResponse { result })
        })
        .await
    }

    async fn introspect(
        &self,
        req: Request<pb::IntrospectRequest>,
    ) -> Result<Response<pb::IntrospectResponse>, Status> {
        use pb::introspect_response::Result as R;
        respond(async {
            let r = req.into_inner();
            let client = client_auth(r.client);
            let answer = self.core.introspect(&client, &r.token).await?;
            let result = outcome(answer, |i| R::Introspection(introspection(i)), R::Error);
            Ok(pb::IntrospectResponse { result })
        })
        .await
    }

    async fn revoke(
        &self,
        req: Request<pb::RevokeRequest>,
    ) -> Result<Response<pb::RevokeResponse>, Status> {
        respond(async {
            let r = req.into_inner();
            let client = client_auth(r.client);
            let refused = self.core.revoke(&client, &r.token).await?;
            Ok(pb::RevokeResponse {
                error: refused.map(convert::oauth_error),
            })
        })
        .await
    }

    async fn user_info(
        &self,
        req: Request<pb::UserInfoRequest>,
    ) -> Result<Response<pb::UserInfoResponse>, Status> {
        use pb::user_info_response::Result as R;
        respond(async {
            let answer = self.core.user_info(&req.get_ref().access_token).await?;
            let result = outcome(answer, |i| R::Claims(i.into()), R::Error);
            Ok(pb::UserInfoResponse { result })
        })
        .await
    }

    async fn account_token(
        &self,
        req: Request<pb::AccountTokenRequest>,
    ) -> Result<Response<pb::AccountTokenResponse>, Status> {
        respond(async {
            let cookie = req.into_inner().browser_session;
            Ok(match self.core.account_token(&cookie).await? {
                Some(t) => pb::AccountTokenResponse {
                    access_token: t.access_token,
                    expires_in: t.expires_in,
                    user_id: t.user_id.to_string(),
                    username: t.username,
                    amr: t.amr,
                    clear_session: false,
                },
                None => pb::AccountTokenResponse {
                    clear_session: !cookie.is_empty(),
                    ..pb::AccountTokenResponse::default()
                },
            })
        })
        .await
    }

    async fn account_sign_in(
        &self,
        req: Request<pb::AccountSignInRequest>,
    ) -> Result<Response<pb::AccountSignInResponse>, Status> {
        respond(async {
            let r = req.into_inner();
            let next = self
                .core
                .account_sign_in(&r.browser_session, &r.browser_binding, r.second_factor)
                .await?;
            Ok(pb::AccountSignInResponse {
                step: Some(next.into()),
            })
        })
        .await
    }

    async fn end_session(
        &self,
        req: Request<pb::EndSessionRequest>,
    ) -> Result<Response<pb::EndSessionResponse>, Status> {
        respond(async {
            let params = req.into_inner().into();
            let (answer, clear_session) = self.core.end_session(params).await?;
            Ok(pb::EndSessionResponse {
                result: Some(answer.into()),
                clear_session,
            })
        })
        .await
    }
}
