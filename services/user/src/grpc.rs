//! The tonic adapter: authenticates each call, hands it to the core, and
//! turns the result into a response or a `Status` (in one place: `Error`'s `From`).

use crate::{domain::NewUser, error::Error, service::UserCore};
use std::sync::Arc;
use suite_grpc::{forwarded::ForwardedArgs, server};
use suite_proto::user::{
    ChangePasswordRequest, ChangePasswordResponse, CreateUserRequest, CreateUserResponse,
    DeleteUserRequest, DeleteUserResponse, GetUserRequest, GetUserResponse, GetUserStatusRequest,
    GetUserStatusResponse, ListUsersRequest, ListUsersResponse, UpdateUserRequest,
    UpdateUserResponse, VerifyCredentialsRequest, VerifyCredentialsResponse,
    user_service_server::UserService,
};
use suite_tokens::{
    Verifier,
    grpc::{caller, require_caller},
};
use tonic::{Request, Response, Status};

pub struct UserApi {
    core: Arc<UserCore>,
    auth: Verifier,
    forwarded: ForwardedArgs,
}

impl UserApi {
    pub fn new(core: Arc<UserCore>, auth: Verifier, forwarded: ForwardedArgs) -> Self {
        Self {
            core,
            auth,
            forwarded,
        }
    }

    /// The client's address as far as it can be believed (see `forwarded`).
    fn client_address<T>(&self, req: &Request<T>) -> String {
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
impl UserService for UserApi {
    async fn create_user(
        &self,
        req: Request<CreateUserRequest>,
    ) -> Result<Response<CreateUserResponse>, Status> {
        reply(
            async {
                let caller = caller(&self.auth, req.metadata()).await?;
                let new = NewUser::parse(req.get_ref())?;
                let user = self.core.create(caller.as_ref(), new).await?;
                Ok(CreateUserResponse { user: Some(user) })
            }
            .await,
        )
    }

    async fn get_user(
        &self,
        req: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                let user = self.core.get(&caller, &req.get_ref().id).await?;
                Ok(GetUserResponse { user: Some(user) })
            }
            .await,
        )
    }

    async fn list_users(
        &self,
        req: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                self.core.list(&caller, req.into_inner()).await
            }
            .await,
        )
    }

    async fn update_user(
        &self,
        req: Request<UpdateUserRequest>,
    ) -> Result<Response<UpdateUserResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                let user = self.core.update(&caller, req.into_inner()).await?;
                Ok(UpdateUserResponse { user: Some(user) })
            }
            .await,
        )
    }

    async fn delete_user(
        &self,
        req: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                let r = req.get_ref();
                self.core.delete(&caller, &r.id, &r.etag).await?;
                Ok(DeleteUserResponse {})
            }
            .await,
        )
    }

    async fn change_password(
        &self,
        req: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                let address = self.client_address(&req);
                self.core
                    .change_password(&caller, req.into_inner(), &address)
                    .await?;
                Ok(ChangePasswordResponse {})
            }
            .await,
        )
    }

    async fn get_user_status(
        &self,
        req: Request<GetUserStatusRequest>,
    ) -> Result<Response<GetUserStatusResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                self.core.status(&caller, &req.get_ref().user_id).await
            }
            .await,
        )
    }

    async fn verify_credentials(
        &self,
        req: Request<VerifyCredentialsRequest>,
    ) -> Result<Response<VerifyCredentialsResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                self.core
                    .verify_credentials(&caller, req.into_inner())
                    .await
            }
            .await,
        )
    }
}
