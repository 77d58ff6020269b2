//! The tonic adapter: authenticates each call, hands it to the core, and
//! turns the result into a response or a `Status` (in one place: `Error`'s `From`).

use crate::{domain::NewUser, error::Error, service::UserCore};
use std::sync::Arc;
use suite_events::{
    Bus, Filter, Start, feed,
    slots::{Slot, Slots},
};
use suite_grpc::{forwarded::ForwardedArgs, server};
use suite_proto::user::{
    ChangePasswordRequest, ChangePasswordResponse, CreateUserRequest, CreateUserResponse,
    DeleteUserRequest, DeleteUserResponse, GetUserRequest, GetUserResponse, GetUserStatusRequest,
    GetUserStatusResponse, ImportUsersRequest, ImportUsersResponse, ListUsersRequest,
    ListUsersResponse, LookupUserRequest, LookupUserResponse, StreamEventsRequest,
    StreamEventsResponse, StreamMyEventsRequest, StreamMyEventsResponse, UpdateUserRequest,
    UpdateUserResponse, VerifyCredentialsRequest, VerifyCredentialsResponse,
    user_service_server::UserService,
};
use suite_tokens::{
    Caller, Lasting, Verifier,
    grpc::{caller, require_caller, require_lasting, token_status},
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

pub struct UserApi {
    core: Arc<UserCore>,
    auth: Verifier,
    forwarded: ForwardedArgs,
    /// Where the event streams read from.
    bus: Bus,
    /// The event streams open, in all and per caller.
    streams: Arc<Slots<String>>,
}

impl UserApi {
    pub fn new(
        core: Arc<UserCore>,
        auth: Verifier,
        forwarded: ForwardedArgs,
        bus: Bus,
        streams: Arc<Slots<String>>,
    ) -> Self {
        Self {
            core,
            auth,
            forwarded,
            bus,
            streams,
        }
    }

    /// A stream's slot for the caller of `token`, or ResourceExhausted.
    fn slot(&self, caller: &Caller) -> Result<Slot<String>, Status> {
        let key = match caller {
            Caller::User(u) => u.id.to_string(),
            Caller::Service { name } => format!("service:{name}"),
        };
        self.streams
            .take(Some(key))
            .map_err(|full| Status::resource_exhausted(full.to_string()))
    }

    /// Serves the events `filter` selects, after `last_event_id`, for as
    /// long as the caller's token lives (until its `exp` or its
    /// revocation), holding one of the caller's stream slots.
    async fn feed(
        &self,
        filter: Filter,
        last_event_id: &str,
        token: Lasting,
    ) -> Result<feed::Feed<suite_proto::user::Event>, Status> {
        let start = if last_event_id.is_empty() {
            Start::New
        } else {
            Start::After(Uuid::parse_str(last_event_id).map_err(|_| {
                Status::from(Error::invalid(
                    "last_event_id",
                    "must be an event id (a UUID) seen before",
                ))
            })?)
        };
        let slot = self.slot(&token.caller)?;
        let ends = async move {
            let why = token.ended().await;
            // Given back as the stream ends, not when the client reads the end.
            drop(slot);
            token_status(&why)
        };
        feed::serve(&self.bus, filter, start, ends)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "cannot subscribe to the events");
                Status::unavailable("the events cannot be read right now; retry")
            })
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
    type StreamMyEventsStream = feed::Feed<StreamMyEventsResponse>;
    type StreamEventsStream = feed::Feed<StreamEventsResponse>;

    async fn stream_my_events(
        &self,
        req: Request<StreamMyEventsRequest>,
    ) -> Result<Response<Self::StreamMyEventsStream>, Status> {
        let token = require_lasting(&self.auth, req.metadata()).await?;
        let Some(me) = token.caller.user_id() else {
            return Err(
                Error::invalid("authorization", "StreamMyEvents needs a user's token").into(),
            );
        };
        let filter = Filter {
            subject: Some(me.to_string()),
            ..Filter::default()
        };
        let feed = self
            .feed(filter, &req.get_ref().last_event_id, token)
            .await?;
        Ok(Response::new(feed::wrap(feed, |event| {
            StreamMyEventsResponse { event: Some(event) }
        })))
    }

    async fn stream_events(
        &self,
        req: Request<StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        let token = require_lasting(&self.auth, req.metadata()).await?;
        if !(token.caller.is_admin() || token.caller.is_service()) {
            return Err(Error::PermissionDenied("only admins may read every user's events").into());
        }
        let r = req.get_ref();
        let known = feed::types();
        if let Some(unknown) = r.types.iter().find(|t| !known.contains(t)) {
            return Err(Error::invalid(
                "types",
                format!("{unknown:?} is not an event type (e.g. suite.user.v1.UserCreated)"),
            )
            .into());
        }
        let filter = Filter {
            types: r.types.clone(),
            ..Filter::default()
        };
        let feed = self.feed(filter, &r.last_event_id, token).await?;
        Ok(Response::new(feed::wrap(feed, |event| {
            StreamEventsResponse { event: Some(event) }
        })))
    }

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

    async fn lookup_user(
        &self,
        req: Request<LookupUserRequest>,
    ) -> Result<Response<LookupUserResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                let user = self.core.lookup(&caller, &req.get_ref().login).await?;
                Ok(LookupUserResponse { user: Some(user) })
            }
            .await,
        )
    }

    async fn import_users(
        &self,
        req: Request<ImportUsersRequest>,
    ) -> Result<Response<ImportUsersResponse>, Status> {
        reply(
            async {
                let caller = require_caller(&self.auth, req.metadata()).await?;
                self.core.import(&caller, req.into_inner()).await
            }
            .await,
        )
    }
}
