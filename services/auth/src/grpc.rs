//! The tonic adapter: authenticates calls that need a caller, hands each to
//! the core, and maps the result (errors once, through `Error`'s `From`).

use crate::{
    error::Error,
    service::{AuthCore, ClientInfo, Issued},
};
use std::sync::Arc;
use suite_grpc::{forwarded::ForwardedArgs, server};
use suite_proto::auth::{
    GetJwksRequest, GetJwksResponse, ListSessionsRequest, ListSessionsResponse, LoginRequest,
    LoginResponse, LogoutRequest, LogoutResponse, RefreshRequest, RefreshResponse,
    RevokeSessionRequest, RevokeSessionResponse, auth_service_server::AuthService,
};
use suite_tokens::{Verifier, grpc::require_caller};
use tonic::{Request, Response, Status};

pub struct AuthApi {
    core: Arc<AuthCore>,
    auth: Verifier,
    forwarded: ForwardedArgs,
}

impl AuthApi {
    pub fn new(core: Arc<AuthCore>, auth: Verifier, forwarded: ForwardedArgs) -> Self {
        Self {
            core,
            auth,
            forwarded,
        }
    }

    /// The client's address: the one `x-forwarded-for` names when a trusted
    /// caller (the gateway) sends it (see `suite_grpc::forwarded`), else the
    /// peer. The throttle counts per
    /// address, and users see it in their session list.
    fn client_ip<T>(&self, req: &Request<T>) -> String {
        let peer = req.remote_addr().map(|a| a.ip());
        self.forwarded
            .client_address(req.metadata(), peer)
            .map(|ip| ip.to_string())
            .unwrap_or_default()
    }
}

/// Answers a call with this crate's error type (see [`server::reply`]).
fn reply<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    server::reply(result)
}

#[tonic::async_trait]
impl AuthService for AuthApi {
    async fn login(&self, req: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        let ip_address = self.client_ip(&req);
        let r = req.into_inner();
        let client = ClientInfo {
            user_agent: r.user_agent,
            ip_address,
        };
        reply(
            self.core
                .login(&r.login, &r.password, client)
                .await
                .map(|i: Issued| LoginResponse {
                    access_token: i.access_token,
                    token_type: "Bearer".into(),
                    expires_in: i.expires_in,
                    refresh_token: i.refresh_token,
                    session_id: i.session_id.to_string(),
                }),
        )
    }

    async fn refresh(
        &self,
        req: Request<RefreshRequest>,
    ) -> Result<Response<RefreshResponse>, Status> {
        reply(
            self.core
                .refresh(&req.get_ref().refresh_token)
                .await
                .map(|i| RefreshResponse {
                    access_token: i.access_token,
                    token_type: "Bearer".into(),
                    expires_in: i.expires_in,
                    refresh_token: i.refresh_token,
                    session_id: i.session_id.to_string(),
                }),
        )
    }

    async fn logout(
        &self,
        req: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResponse>, Status> {
        reply(
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
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                let r = req.get_ref();
                self.core
                    .list_sessions(&caller, r.page_size, &r.page_token, &r.user_id)
                    .await
            }
            .await,
        )
    }

    async fn revoke_session(
        &self,
        req: Request<RevokeSessionRequest>,
    ) -> Result<Response<RevokeSessionResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                self.core.revoke_session(&caller, &req.get_ref().id).await?;
                Ok(RevokeSessionResponse {})
            }
            .await,
        )
    }

    async fn get_jwks(
        &self,
        _req: Request<GetJwksRequest>,
    ) -> Result<Response<GetJwksResponse>, Status> {
        reply(self.core.jwks().map(|keys| GetJwksResponse { keys }))
    }
}
