//! The tonic adapter: authenticates each call, hands it to the core, and
//! turns the result into a response or a `Status` (in one place: `Error`'s `From`).

use crate::{error::Error, service::UserCore};
use std::sync::Arc;
use suite_proto::user::{
    ChangePasswordRequest, ChangePasswordResponse, CreateUserRequest, CreateUserResponse,
    DeleteUserRequest, DeleteUserResponse, GetUserRequest, GetUserResponse, ListUsersRequest,
    ListUsersResponse, UpdateUserRequest, UpdateUserResponse, VerifyCredentialsRequest,
    VerifyCredentialsResponse, user_service_server::UserService,
};
use suite_shared::auth::Authenticator;
use tonic::{Request, Response, Status};

pub struct UserApi {
    core: Arc<UserCore>,
    auth: Authenticator,
}

impl UserApi {
    pub fn new(core: Arc<UserCore>, auth: Authenticator) -> Self {
        Self { core, auth }
    }
}

fn reply<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    match result {
        Ok(v) => Ok(Response::new(v)),
        Err(e) => {
            let status = Status::from(e);
            tracing::info!(rpc.grpc.status_code = ?status.code(), "call failed: {}", status.message());
            Err(status)
        }
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    async fn create_user(
        &self,
        req: Request<CreateUserRequest>,
    ) -> Result<Response<CreateUserResponse>, Status> {
        let caller = self.auth.caller(req.metadata()).await?;
        let user = self.core.create(caller.as_ref(), req.into_inner()).await;
        reply(user.map(|u| CreateUserResponse { user: Some(u) }))
    }

    async fn get_user(
        &self,
        req: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        let caller = self.auth.require_caller(req.metadata()).await?;
        let user = self.core.get(&caller, &req.get_ref().id).await;
        reply(user.map(|u| GetUserResponse { user: Some(u) }))
    }

    async fn list_users(
        &self,
        req: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        let caller = self.auth.require_caller(req.metadata()).await?;
        reply(self.core.list(&caller, req.into_inner()).await)
    }

    async fn update_user(
        &self,
        req: Request<UpdateUserRequest>,
    ) -> Result<Response<UpdateUserResponse>, Status> {
        let caller = self.auth.require_caller(req.metadata()).await?;
        let user = self.core.update(&caller, req.into_inner()).await;
        reply(user.map(|u| UpdateUserResponse { user: Some(u) }))
    }

    async fn delete_user(
        &self,
        req: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        let caller = self.auth.require_caller(req.metadata()).await?;
        let r = req.get_ref();
        reply(
            self.core
                .delete(&caller, &r.id, &r.etag)
                .await
                .map(|()| DeleteUserResponse {}),
        )
    }

    async fn change_password(
        &self,
        req: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        let caller = self.auth.require_caller(req.metadata()).await?;
        let done = self.core.change_password(&caller, req.into_inner()).await;
        reply(done.map(|()| ChangePasswordResponse {}))
    }

    async fn verify_credentials(
        &self,
        req: Request<VerifyCredentialsRequest>,
    ) -> Result<Response<VerifyCredentialsResponse>, Status> {
        let caller = self.auth.require_caller(req.metadata()).await?;
        reply(
            self.core
                .verify_credentials(&caller, req.into_inner())
                .await,
        )
    }
}
