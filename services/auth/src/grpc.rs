//! The gRPC adapter: authenticates calls that need a caller, parses each
//! request into the core's input, hands it to the core, and converts the
//! answer into the response, or the error into a `Status` (in one place:
//! `Error`'s `From`, applied by [`server::reply`], which logs it once).

use crate::{
    core::{AuthCore, ClientInfo, Issued, LoginOutcome, Proof, SessionPage},
    error::Error,
    oauth::{OAuthCore, account::SignedOut},
    store::SessionRecord,
};
use std::sync::Arc;
use suite_grpc::{forwarded::ForwardedArgs, server};
use suite_proto::{access::method_path, auth::auth_service_server::AuthServiceServer};
use suite_proto::{
    auth::{
        CompleteLoginRequest, CompleteLoginResponse, FinishPasskeyLoginRequest,
        FinishPasskeyLoginResponse, GetJwksRequest, GetJwksResponse, ListSessionsRequest,
        ListSessionsResponse, LoginRequest, LoginResponse, LogoutRequest, LogoutResponse,
        RefreshRequest, RefreshResponse, RevokeAllSessionsRequest, RevokeAllSessionsResponse,
        RevokeSessionRequest, RevokeSessionResponse, SecondFactorChallenge, Session,
        StartPasskeyLoginRequest, StartPasskeyLoginResponse, auth_service_server::AuthService,
    },
    parse_credentials,
    time::to_timestamp,
};
use suite_tokens::{Caller, Verifier, grpc::require_caller_for, keys::jwk_to_proto};
use tonic::{Request, Response, Status, server::NamedService};
use uuid::Uuid;

pub struct AuthApi {
    core: Arc<AuthCore>,
    /// The provider, whose browser sessions signing out everywhere ends too.
    provider: Arc<OAuthCore>,
    auth: Verifier,
    forwarded: ForwardedArgs,
}

impl AuthApi {
    pub fn new(
        core: Arc<AuthCore>,
        provider: Arc<OAuthCore>,
        auth: Verifier,
        forwarded: ForwardedArgs,
    ) -> Self {
        Self {
            core,
            provider,
            auth,
            forwarded,
        }
    }

    /// The caller of `req`, who must have a valid bearer token that allows
    /// this service's `method` (an OAuth token needs the scope the contract
    /// names for it): PermissionDenied otherwise.
    async fn caller_of<T>(&self, req: &Request<T>, method: &str) -> Result<Caller, Status> {
        let path = method_path(<AuthServiceServer<AuthApi> as NamedService>::NAME, method);
        require_caller_for(&self.auth, req.metadata(), &path).await
    }
}

/// A token pair as Login and Refresh both answer it: (access_token,
/// token_type, expires_in, refresh_token, session_id).
fn token_pair(i: Issued) -> (String, String, i64, String, String) {
    (
        i.access_token,
        "Bearer".into(),
        i.expires_in,
        i.refresh_token,
        i.session_id.to_string(),
    )
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn login(&self, req: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        server::reply(
            async {
                // Where the client is, for the user service's throttle (per
                // address) and the user's session list.
                let ip_address = self.forwarded.client_of(&req);
                let r = req.into_inner();
                let (login, password) =
                    parse_credentials(&r.login, r.password).map_err(Error::InvalidArgument)?;
                let client = ClientInfo {
                    user_agent: r.user_agent,
                    ip_address,
                };
                let issued = match self.core.login(&login, &password, client).await? {
                    LoginOutcome::Issued(issued) => issued,
                    LoginOutcome::SecondFactor(c) => {
                        return Ok(LoginResponse {
                            second_factor: Some(SecondFactorChallenge {
                                challenge: c.challenge,
                                expires_in: c.expires_in,
                                methods: c.methods,
                                passkey_options_json: c.passkey_options,
                            }),
                            ..LoginResponse::default()
                        });
                    }
                };
                let (access_token, token_type, expires_in, refresh_token, session_id) =
                    token_pair(issued);
                Ok::<_, Error>(LoginResponse {
                    access_token,
                    token_type,
                    expires_in,
                    refresh_token,
                    session_id,
                    second_factor: None,
                })
            }
            .await,
        )
    }

    async fn complete_login(
        &self,
        req: Request<CompleteLoginRequest>,
    ) -> Result<Response<CompleteLoginResponse>, Status> {
        server::reply(
            async {
                let ip_address = self.forwarded.client_of(&req);
                let r = req.into_inner();
                let proof = Proof {
                    code: &r.code,
                    passkey_assertion: &r.passkey_assertion_json,
                };
                let issued = self
                    .core
                    .complete_login(&r.challenge, proof, &ip_address)
                    .await?;
                let (access_token, token_type, expires_in, refresh_token, session_id) =
                    token_pair(issued);
                Ok::<_, Error>(CompleteLoginResponse {
                    access_token,
                    token_type,
                    expires_in,
                    refresh_token,
                    session_id,
                })
            }
            .await,
        )
    }

    async fn start_passkey_login(
        &self,
        _req: Request<StartPasskeyLoginRequest>,
    ) -> Result<Response<StartPasskeyLoginResponse>, Status> {
        server::reply(
            async {
                let (ceremony, options_json, expires_in) = self.core.start_passkey_login().await?;
                Ok::<_, Error>(StartPasskeyLoginResponse {
                    ceremony,
                    options_json,
                    expires_in,
                })
            }
            .await,
        )
    }

    async fn finish_passkey_login(
        &self,
        req: Request<FinishPasskeyLoginRequest>,
    ) -> Result<Response<FinishPasskeyLoginResponse>, Status> {
        server::reply(
            async {
                let ip_address = self.forwarded.client_of(&req);
                let r = req.into_inner();
                let client = ClientInfo {
                    user_agent: r.user_agent,
                    ip_address,
                };
                let issued = self
                    .core
                    .finish_passkey_login(&r.ceremony, &r.assertion_json, client)
                    .await?;
                let (access_token, token_type, expires_in, refresh_token, session_id) =
                    token_pair(issued);
                Ok::<_, Error>(FinishPasskeyLoginResponse {
                    access_token,
                    token_type,
                    expires_in,
                    refresh_token,
                    session_id,
                })
            }
            .await,
        )
    }

    async fn refresh(
        &self,
        req: Request<RefreshRequest>,
    ) -> Result<Response<RefreshResponse>, Status> {
        server::reply(
            self.core
                .refresh(&req.get_ref().refresh_token)
                .await
                .map(|i| {
                    let (access_token, token_type, expires_in, refresh_token, session_id) =
                        token_pair(i);
                    RefreshResponse {
                        access_token,
                        token_type,
                        expires_in,
                        refresh_token,
                        session_id,
                    }
                }),
        )
    }

    async fn logout(
        &self,
        req: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        server::reply(
            self.core
                .logout(&req.get_ref().refresh_token)
                .await
                .map(|()| LogoutResponse {}),
        )
    }

    async fn list_sessions(
        &self,
        req: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let caller = self.caller_of(&req, "ListSessions").await?;
        server::reply(
            async {
                let r = req.get_ref();
                let SessionPage {
                    sessions,
                    current,
                    next_page_token,
                } = self
                    .core
                    .list_sessions(&caller, r.page_size, &r.page_token, &r.user_id)
                    .await?;
                Ok::<_, Error>(ListSessionsResponse {
                    sessions: sessions.iter().map(|s| session(s, current)).collect(),
                    next_page_token,
                })
            }
            .await,
        )
    }

    async fn revoke_session(
        &self,
        req: Request<RevokeSessionRequest>,
    ) -> Result<Response<RevokeSessionResponse>, Status> {
        let caller = self.caller_of(&req, "RevokeSession").await?;
        server::reply(
            async {
                self.core.revoke_session(&caller, &req.get_ref().id).await?;
                Ok::<_, Error>(RevokeSessionResponse {})
            }
            .await,
        )
    }

    async fn revoke_all_sessions(
        &self,
        req: Request<RevokeAllSessionsRequest>,
    ) -> Result<Response<RevokeAllSessionsResponse>, Status> {
        let caller = self.caller_of(&req, "RevokeAllSessions").await?;
        server::reply(
            async {
                let user = caller.user_id().ok_or(Error::PermissionDenied(
                    "sessions belong to users; this token names no user",
                ))?;
                let SignedOut {
                    sessions,
                    browser_sessions,
                } = self.provider.sign_out_everywhere(user).await?;
                Ok::<_, Error>(RevokeAllSessionsResponse {
                    ended_sessions: i32::try_from(sessions).unwrap_or(i32::MAX),
                    ended_browser_sessions: i32::try_from(browser_sessions).unwrap_or(i32::MAX),
                })
            }
            .await,
        )
    }

    async fn get_jwks(
        &self,
        _req: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        server::reply(self.core.jwks().map(|set| GetJwksResponse {
            keys: set.keys.iter().filter_map(jwk_to_proto).collect(),
        }))
    }
}

/// A session as its owner (or an operator) sees it; `current` is the
/// caller's own.
fn session(s: &SessionRecord, current: Option<Uuid>) -> Session {
    Session {
        current: current == Some(s.id),
        id: s.id.to_string(),
        user_id: s.user_id.to_string(),
        create_time: Some(to_timestamp(s.created_at)),
        last_use_time: Some(to_timestamp(s.last_used_at)),
        expire_time: Some(to_timestamp(s.expires_at)),
        user_agent: s.user_agent.clone(),
        ip_address: s.ip_address.clone(),
    }
}
