//! TokenService over the personal access tokens' core: parses, finds the
//! caller, answers. The secret leaves only in CreatePersonalAccessToken's
//! answer; exchanges need no other credential than the token.

use super::{NewToken, TokenCore, store::TokenRecord};
use crate::error::Error;
use std::sync::Arc;
use suite_grpc::server;
use suite_proto::{
    access::method_path,
    auth::{
        CreatePersonalAccessTokenRequest, CreatePersonalAccessTokenResponse,
        ExchangePersonalAccessTokenRequest, ExchangePersonalAccessTokenResponse,
        ListPersonalAccessTokensRequest, ListPersonalAccessTokensResponse, PersonalAccessToken,
        RevokePersonalAccessTokenRequest, RevokePersonalAccessTokenResponse,
        token_service_server::{TokenService, TokenServiceServer},
    },
    time::{from_timestamp, to_timestamp},
};
use suite_tokens::{Caller, Verifier, grpc::require_caller_for};
use tonic::{Request, Response, Status, server::NamedService};

#[derive(Clone)]
pub struct TokenApi {
    core: Arc<TokenCore>,
    auth: Verifier,
}

impl TokenApi {
    pub fn new(core: Arc<TokenCore>, auth: Verifier) -> Self {
        Self { core, auth }
    }

    /// The caller, whose token must allow `method` (the contract's table:
    /// creating needs a sign-in's own token, never a personal or OAuth one).
    async fn caller_of<T>(&self, req: &Request<T>, method: &str) -> Result<Caller, Status> {
        let path = method_path(<TokenServiceServer<TokenApi> as NamedService>::NAME, method);
        require_caller_for(&self.auth, req.metadata(), &path).await
    }
}

/// A token as listed: never its secret or hash.
fn token_proto(t: &TokenRecord) -> PersonalAccessToken {
    PersonalAccessToken {
        id: t.id.to_string(),
        user_id: t.user_id.to_string(),
        name: t.name.clone(),
        prefix: t.prefix.clone(),
        scopes: suite_tokens::scope_list(&t.scopes),
        create_time: Some(to_timestamp(t.created_at)),
        expire_time: Some(to_timestamp(t.expires_at)),
        last_use_time: t.last_used_at.map(to_timestamp),
    }
}

#[tonic::async_trait]
impl TokenService for TokenApi {
    async fn create_personal_access_token(
        &self,
        req: Request<CreatePersonalAccessTokenRequest>,
    ) -> Result<Response<CreatePersonalAccessTokenResponse>, Status> {
        let caller = self.caller_of(&req, "CreatePersonalAccessToken").await?;
        let r = req.into_inner();
        server::reply(
            async {
                let expires_at = match &r.expire_time {
                    None => None,
                    Some(t) => Some(from_timestamp(t).ok_or_else(|| {
                        Error::invalid("expire_time", "must be a valid timestamp")
                    })?),
                };
                let new = NewToken {
                    name: r.name,
                    scopes: r.scopes,
                    expires_at,
                    user_id: r.user_id,
                };
                let (record, secret) = self.core.create(&caller, new).await?;
                Ok::<_, Error>(CreatePersonalAccessTokenResponse {
                    token: Some(token_proto(&record)),
                    secret,
                })
            }
            .await,
        )
    }

    async fn list_personal_access_tokens(
        &self,
        req: Request<ListPersonalAccessTokensRequest>,
    ) -> Result<Response<ListPersonalAccessTokensResponse>, Status> {
        let caller = self.caller_of(&req, "ListPersonalAccessTokens").await?;
        server::reply(
            async {
                let tokens = self.core.list(&caller, &req.get_ref().user_id).await?;
                Ok::<_, Error>(ListPersonalAccessTokensResponse {
                    tokens: tokens.iter().map(token_proto).collect(),
                })
            }
            .await,
        )
    }

    async fn revoke_personal_access_token(
        &self,
        req: Request<RevokePersonalAccessTokenRequest>,
    ) -> Result<Response<RevokePersonalAccessTokenResponse>, Status> {
        let caller = self.caller_of(&req, "RevokePersonalAccessToken").await?;
        server::reply(
            async {
                self.core.revoke(&caller, &req.get_ref().id).await?;
                Ok::<_, Error>(RevokePersonalAccessTokenResponse {})
            }
            .await,
        )
    }

    async fn exchange_personal_access_token(
        &self,
        req: Request<ExchangePersonalAccessTokenRequest>,
    ) -> Result<Response<ExchangePersonalAccessTokenResponse>, Status> {
        server::reply(
            async {
                let (access_token, expires_in) = self.core.exchange(&req.get_ref().token).await?;
                Ok::<_, Error>(ExchangePersonalAccessTokenResponse {
                    access_token,
                    expires_in,
                })
            }
            .await,
        )
    }
}
