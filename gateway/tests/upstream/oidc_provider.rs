//! The scripted OAuthService the gateway's OAuth tests (`oidc.rs`) stand
//! in front of: fixed answers by input, and what it was sent.

use std::sync::{Arc, Mutex};
use suite_proto::auth::{
    AuthorizationStep, AuthorizeRequest, AuthorizeResponse, BrowserSessionCookie, ConsentRequest,
    ConsentResponse, EndSessionRequest, EndSessionResponse, ErrorPage,
    GetProviderConfigurationRequest, GetProviderConfigurationResponse, IntrospectRequest,
    IntrospectResponse, Introspection, OAuthError, RevokeRequest, RevokeResponse,
    SignInFactorRequest, SignInFactorResponse, SignInPage, SignInRequest, SignInResponse,
    SignOutConfirmPage, TokenRequest, TokenResponse, Tokens, UserInfoClaims, UserInfoRequest,
    UserInfoResponse, authorization_step, end_session_response, introspect_response,
    o_auth_service_server::OAuthService, token_response, user_info_response,
};
use tonic::{Request, Response, Status};

/// What the scripted provider saw.
#[derive(Default)]
pub struct Seen {
    pub configuration_calls: usize,
    pub bindings: Vec<String>,
    pub sessions: Vec<String>,
    pub clients: Vec<suite_proto::auth::ClientAuthentication>,
    /// Whether RegisterClient is on (NOT_FOUND otherwise).
    pub registration_enabled: bool,
    pub registrations: Vec<suite_proto::auth::ClientMetadata>,
    /// The authorization requests' parameters.
    pub parameters: Vec<suite_proto::auth::AuthorizationParameters>,
    /// The second factors' requests.
    pub factors: Vec<SignInFactorRequest>,
}

#[derive(Clone, Default)]
pub struct Provider(Arc<Mutex<Seen>>);

impl Provider {
    pub fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.0.lock().expect("lock")
    }
}

pub const EVIL: &str = "<script>alert(1)</script>";

fn step(step: authorization_step::Step) -> Option<AuthorizationStep> {
    Some(AuthorizationStep {
        step: Some(step),
        set_session: None,
        clear_session: false,
    })
}

fn sign_in_page(error: &str, field: &str, retry: i64) -> authorization_step::Step {
    factor_page(error, field, retry, "")
}

/// The sign-in page; with a `challenge`, its second step.
fn factor_page(error: &str, field: &str, retry: i64, challenge: &str) -> authorization_step::Step {
    authorization_step::Step::SignIn(SignInPage {
        request_id: "req-1".into(),
        csrf_token: "csrf-1".into(),
        client_name: format!("App {EVIL}"),
        login_hint: String::new(),
        error: error.into(),
        error_field: field.into(),
        retry_after_secs: retry,
        factor_challenge: challenge.into(),
        ..SignInPage::default()
    })
}

/// The step of a right sign-in: to the client, with the SSO session.
fn signed_in() -> Option<AuthorizationStep> {
    Some(AuthorizationStep {
        step: Some(authorization_step::Step::RedirectUri(
            "https://app.example/cb?code=c0de&state=s&iss=https%3A%2F%2Fid.example".into(),
        )),
        set_session: Some(BrowserSessionCookie {
            value: "sso-1".into(),
            max_age_secs: 3600,
        }),
        clear_session: false,
    })
}

#[tonic::async_trait]
impl OAuthService for Provider {
    async fn get_provider_configuration(
        &self,
        _: Request<GetProviderConfigurationRequest>,
    ) -> Result<Response<GetProviderConfigurationResponse>, Status> {
        self.seen().configuration_calls += 1;
        Ok(Response::new(GetProviderConfigurationResponse {
            issuer: "https://id.example".into(),
            scopes_supported: vec!["openid".into(), "profile".into()],
            id_token_signing_alg_values_supported: vec!["RS256".into(), "ES256".into()],
            grant_types_supported: vec!["authorization_code".into()],
            claims_supported: vec!["sub".into()],
            registration_enabled: self.seen().registration_enabled,
        }))
    }

    async fn authorize(
        &self,
        request: Request<AuthorizeRequest>,
    ) -> Result<Response<AuthorizeResponse>, Status> {
        let r = request.into_inner();
        self.seen().bindings.push(r.browser_binding.clone());
        self.seen().sessions.push(r.browser_session.clone());
        let p = r.parameters.unwrap_or_default();
        self.seen().parameters.push(p.clone());
        let step = match p.client_id.as_str() {
            "app" => step(sign_in_page("", "", 0)),
            _ => step(authorization_step::Step::Error(ErrorPage {
                error: "invalid_request".into(),
                description: format!("unknown client {EVIL} {}", p.redirect_uri),
            })),
        };
        Ok(Response::new(AuthorizeResponse { step }))
    }

    async fn sign_in(
        &self,
        request: Request<SignInRequest>,
    ) -> Result<Response<SignInResponse>, Status> {
        let r = request.into_inner();
        self.seen().bindings.push(r.browser_binding.clone());
        let step = match r.password.as_str() {
            "right" => signed_in(),
            "right-mfa" => step(factor_page("", "", 0, &format!("ch-1 {EVIL}"))),
            "locked" => step(sign_in_page("", "", 30)),
            _ => step(sign_in_page("Wrong login or password.", "password", 0)),
        };
        Ok(Response::new(SignInResponse { step }))
    }

    async fn sign_in_passkey(
        &self,
        _: Request<suite_proto::auth::SignInPasskeyRequest>,
    ) -> Result<Response<suite_proto::auth::SignInPasskeyResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn sign_in_factor(
        &self,
        request: Request<SignInFactorRequest>,
    ) -> Result<Response<SignInFactorResponse>, Status> {
        let r = request.into_inner();
        self.seen().bindings.push(r.browser_binding.clone());
        self.seen().factors.push(r.clone());
        let step = match r.code.as_str() {
            "123456" | "abcd-efgh" => signed_in(),
            "locked" => step(factor_page("", "code", 45, "ch-2")),
            "expired" => step(sign_in_page("That took too long: sign in again.", "", 0)),
            _ => step(factor_page("That code is wrong.", "code", 0, "ch-2")),
        };
        Ok(Response::new(SignInFactorResponse { step }))
    }

    async fn consent(
        &self,
        _: Request<ConsentRequest>,
    ) -> Result<Response<ConsentResponse>, Status> {
        Ok(Response::new(ConsentResponse {
            step: step(authorization_step::Step::RedirectUri(
                "https://app.example/cb?error=access_denied".into(),
            )),
        }))
    }

    async fn register_client(
        &self,
        request: Request<suite_proto::auth::RegisterClientRequest>,
    ) -> Result<Response<suite_proto::auth::RegisterClientResponse>, Status> {
        use suite_proto::auth::{RegisteredClient, register_client_response::Result as R};
        if !self.seen().registration_enabled {
            return Err(Status::not_found("dynamic client registration is off"));
        }
        let m = request.into_inner().metadata.unwrap_or_default();
        self.seen().registrations.push(m.clone());
        let result = if m.redirect_uris.iter().any(|u| u.starts_with("http://evil")) {
            R::Error(OAuthError {
                error: "invalid_redirect_uri".into(),
                error_description: "redirect_uris: http is for loopback only".into(),
            })
        } else {
            R::Client(RegisteredClient {
                client_id: "new-client".into(),
                client_secret: "s3cret".into(),
                client_id_issued_at: 1_700_000_000,
                metadata: Some(suite_proto::auth::ClientMetadata {
                    token_endpoint_auth_method: "client_secret_basic".into(),
                    response_types: vec!["code".into()],
                    grant_types: vec!["authorization_code".into()],
                    scope: "openid".into(),
                    ..m
                }),
            })
        };
        Ok(Response::new(suite_proto::auth::RegisterClientResponse {
            result: Some(result),
        }))
    }

    async fn device_authorize(
        &self,
        request: Request<suite_proto::auth::DeviceAuthorizeRequest>,
    ) -> Result<Response<suite_proto::auth::DeviceAuthorizeResponse>, Status> {
        use suite_proto::auth::{DeviceAuthorization, device_authorize_response::Result as R};
        let client = request.into_inner().client.unwrap_or_default();
        self.seen().clients.push(client.clone());
        let result = if client.client_id == "tv" {
            R::Authorization(DeviceAuthorization {
                device_code: "dev-code".into(),
                user_code: "BCDF-GHJK".into(),
                verification_uri: "https://id.example/oauth2/device".into(),
                verification_uri_complete: "https://id.example/oauth2/device?user_code=BCDF-GHJK"
                    .into(),
                expires_in: 600,
                interval: 5,
            })
        } else {
            R::Error(OAuthError {
                error: "unauthorized_client".into(),
                error_description: "not for devices".into(),
            })
        };
        Ok(Response::new(suite_proto::auth::DeviceAuthorizeResponse {
            result: Some(result),
        }))
    }

    async fn verify_user_code(
        &self,
        request: Request<suite_proto::auth::VerifyUserCodeRequest>,
    ) -> Result<Response<suite_proto::auth::VerifyUserCodeResponse>, Status> {
        use suite_proto::auth::{ConsentPage, verify_user_code_response::Result as R};
        let r = request.into_inner();
        self.seen().bindings.push(r.browser_binding.clone());
        self.seen().sessions.push(r.browser_session.clone());
        let result = if r.user_code == "bcdfghjk" {
            R::Step(AuthorizationStep {
                step: Some(authorization_step::Step::Consent(ConsentPage {
                    request_id: "req-2".into(),
                    csrf_token: "csrf-2".into(),
                    client_name: format!("TV {EVIL}"),
                    scopes: Vec::new(),
                    username: "ada".into(),
                    user_code: "BCDF-GHJK".into(),
                })),
                set_session: None,
                clear_session: false,
            })
        } else {
            R::RetryError("That code is unknown.".into())
        };
        Ok(Response::new(suite_proto::auth::VerifyUserCodeResponse {
            result: Some(result),
        }))
    }

    async fn token(
        &self,
        request: Request<TokenRequest>,
    ) -> Result<Response<TokenResponse>, Status> {
        let r = request.into_inner();
        let client = r.client.unwrap_or_default();
        self.seen().clients.push(client.clone());
        let result = if client.client_secret == "s3cr:t+%" || client.method == "none" {
            token_response::Result::Tokens(Tokens {
                access_token: "at".into(),
                token_type: "Bearer".into(),
                expires_in: 300,
                refresh_token: String::new(),
                id_token: "idt".into(),
                scope: "openid".into(),
            })
        } else {
            token_response::Result::Error(OAuthError {
                error: "invalid_client".into(),
                error_description: "wrong secret".into(),
            })
        };
        Ok(Response::new(TokenResponse {
            result: Some(result),
        }))
    }

    async fn introspect(
        &self,
        request: Request<IntrospectRequest>,
    ) -> Result<Response<IntrospectResponse>, Status> {
        let active = request.into_inner().token == "live";
        Ok(Response::new(IntrospectResponse {
            result: Some(introspect_response::Result::Introspection(Introspection {
                active,
                scope: if active {
                    "openid".into()
                } else {
                    String::new()
                },
                aud: if active {
                    vec!["suite".into()]
                } else {
                    Vec::new()
                },
                exp: if active { 2_000_000_000 } else { 0 },
                ..Default::default()
            })),
        }))
    }

    async fn revoke(&self, _: Request<RevokeRequest>) -> Result<Response<RevokeResponse>, Status> {
        Ok(Response::new(RevokeResponse { error: None }))
    }

    async fn user_info(
        &self,
        request: Request<UserInfoRequest>,
    ) -> Result<Response<UserInfoResponse>, Status> {
        let result = if request.into_inner().access_token == "good" {
            user_info_response::Result::Claims(UserInfoClaims {
                sub: "u1".into(),
                preferred_username: Some("ada".into()),
                ..Default::default()
            })
        } else {
            user_info_response::Result::Error(OAuthError {
                error: "invalid_token".into(),
                error_description: "the token \"expired\"".into(),
            })
        };
        Ok(Response::new(UserInfoResponse {
            result: Some(result),
        }))
    }

    /// No browser session is live here: the account pages ask to sign in.
    async fn account_token(
        &self,
        request: Request<suite_proto::auth::AccountTokenRequest>,
    ) -> Result<Response<suite_proto::auth::AccountTokenResponse>, Status> {
        Ok(Response::new(suite_proto::auth::AccountTokenResponse {
            clear_session: !request.into_inner().browser_session.is_empty(),
            ..Default::default()
        }))
    }

    async fn account_sign_in(
        &self,
        request: Request<suite_proto::auth::AccountSignInRequest>,
    ) -> Result<Response<suite_proto::auth::AccountSignInResponse>, Status> {
        let r = request.into_inner();
        self.seen().bindings.push(r.browser_binding);
        Ok(Response::new(suite_proto::auth::AccountSignInResponse {
            step: Some(AuthorizationStep {
                step: Some(authorization_step::Step::SignIn(SignInPage {
                    request_id: "req-account".into(),
                    csrf_token: "csrf-account".into(),
                    client_name: "your account".into(),
                    ..Default::default()
                })),
                set_session: None,
                clear_session: false,
            }),
        }))
    }

    async fn end_session(
        &self,
        request: Request<EndSessionRequest>,
    ) -> Result<Response<EndSessionResponse>, Status> {
        let r = request.into_inner();
        let result = if r.confirmed {
            end_session_response::Result::RedirectUri("https://app.example/bye?state=z".into())
        } else {
            end_session_response::Result::Confirm(SignOutConfirmPage {
                csrf_token: "csrf-2".into(),
                client_name: "App".into(),
                username: "ada".into(),
            })
        };
        Ok(Response::new(EndSessionResponse {
            result: Some(result),
            clear_session: r.confirmed,
        }))
    }
}
