//! The gRPC adapter: authenticates each call, parses its request into the
//! core's input, hands it to the core, and turns the answer into the
//! response, or the error into a `Status` (in one place: `Error`'s `From`,
//! applied by [`server::reply`], which logs it once).

use crate::{
    core::{
        UserCore,
        credentials::{CredentialCheck, SignInClient},
        import::ImportOutcome,
        view::{UserPage, UserStatus},
    },
    domain::{NewUser, UserRef, UserUpdate},
    error::{Error, FieldViolation},
};
use std::sync::Arc;
use suite_events::{
    Bus, Filter, Start, feed,
    slots::{Slot, Slots},
};
use suite_grpc::{forwarded::ForwardedArgs, server};
use suite_proto::access::{method_access, method_path};
use suite_proto::{
    Login, Password, parse_credentials,
    time::to_timestamp,
    user::{
        ChangePasswordRequest, ChangePasswordResponse, ConfirmEmailRequest, ConfirmEmailResponse,
        CreateUserRequest, CreateUserResponse, DeleteUserRequest, DeleteUserResponse,
        GetUserRequest, GetUserResponse, GetUserStatusRequest, GetUserStatusResponse, ImportResult,
        ImportUsersRequest, ImportUsersResponse, ListUsersRequest, ListUsersResponse,
        LookupUserRequest, LookupUserResponse, RequestPasswordResetRequest,
        RequestPasswordResetResponse, ResetPasswordRequest, ResetPasswordResponse,
        RevertEmailChangeRequest, RevertEmailChangeResponse, SendEmailVerificationRequest,
        SendEmailVerificationResponse, StreamEventsRequest, StreamEventsResponse,
        StreamMyEventsRequest, StreamMyEventsResponse, UpdateUserRequest, UpdateUserResponse,
        VerifyCredentialsRequest, VerifyCredentialsResponse, import_result,
        user_service_server::UserService, user_service_server::UserServiceServer,
        verify_credentials_response::Outcome,
    },
};
use suite_tokens::{
    Caller, Lasting, Verifier,
    grpc::{caller, require_caller, require_lasting, token_status},
};
use tonic::server::NamedService;

mod factors;
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

    /// The caller of `req`, who must have a valid bearer token that allows
    /// `method` (this service's method of that name): an OAuth token needs
    /// the scope the contract names for it.
    async fn caller<T>(&self, req: &Request<T>, method: &str) -> Result<Caller, Error> {
        let caller = require_caller(&self.auth, req.metadata())
            .await
            .map_err(refused)?;
        allowed(&caller, method)?;
        Ok(caller)
    }

    /// A stream's slot for the caller of `token`, or ResourceExhausted.
    fn slot(&self, caller: &Caller) -> Result<Slot<String>, Status> {
        let key = match caller {
            Caller::User(u) => u.id.to_string(),
            Caller::Service { name } => format!("service:{name}"),
            Caller::Client { client_id, .. } => format!("client:{client_id}"),
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
}

/// Refuses `caller` unless its token allows this service's `method`, by the
/// contract's table (`suite.api.v1.access`).
fn allowed(caller: &Caller, method: &str) -> Result<(), Error> {
    let path = method_path(<UserServiceServer<UserApi> as NamedService>::NAME, method);
    caller
        .may_call(method_access(&path))
        .map_err(Error::ScopeRefused)
}

/// A refused bearer token (the verifier's status says why) as this crate's error.
fn refused(status: Status) -> Error {
    Error::TokenRefused(status.message().to_owned())
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
        allowed(&token.caller, "StreamMyEvents")?;
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
        allowed(&token.caller, "StreamEvents")?;
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
        server::reply(
            async {
                // Registration is open: a token only matters if one is sent.
                let caller = caller(&self.auth, req.metadata()).await.map_err(refused)?;
                let new = NewUser::parse(req.into_inner())?;
                let user = self.core.create(caller.as_ref(), new).await?;
                Ok::<_, Error>(CreateUserResponse { user: Some(user) })
            }
            .await,
        )
    }

    async fn get_user(
        &self,
        req: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "GetUser").await?;
                let target = UserRef::parse(&req.get_ref().id, "id")?;
                let user = self.core.get(&caller, target).await?;
                Ok::<_, Error>(GetUserResponse { user: Some(user) })
            }
            .await,
        )
    }

    async fn list_users(
        &self,
        req: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "ListUsers").await?;
                let r = req.get_ref();
                let UserPage {
                    users,
                    next_page_token,
                    total_size,
                } = self.core.list(&caller, r.page_size, &r.page_token).await?;
                Ok::<_, Error>(ListUsersResponse {
                    users,
                    next_page_token,
                    total_size,
                })
            }
            .await,
        )
    }

    async fn update_user(
        &self,
        req: Request<UpdateUserRequest>,
    ) -> Result<Response<UpdateUserResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "UpdateUser").await?;
                let update = UserUpdate::parse(req.into_inner())?;
                let user = self.core.update(&caller, update).await?;
                Ok::<_, Error>(UpdateUserResponse { user: Some(user) })
            }
            .await,
        )
    }

    async fn delete_user(
        &self,
        req: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "DeleteUser").await?;
                let r = req.get_ref();
                let target = UserRef::parse(&r.id, "id")?;
                self.core.delete(&caller, target, &r.etag).await?;
                Ok::<_, Error>(DeleteUserResponse {})
            }
            .await,
        )
    }

    async fn change_password(
        &self,
        req: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "ChangePassword").await?;
                let address = self.forwarded.client_of(&req);
                let r = req.into_inner();
                let target = UserRef::parse(&r.id, "id")?;
                let current = Password::parse(r.current_password).ok();
                let new = Password::parse(r.new_password).ok();
                self.core
                    .change_password(&caller, target, current, new, &address)
                    .await?;
                Ok::<_, Error>(ChangePasswordResponse {})
            }
            .await,
        )
    }

    async fn get_user_status(
        &self,
        req: Request<GetUserStatusRequest>,
    ) -> Result<Response<GetUserStatusResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "GetUserStatus").await?;
                let status = self.core.status(&caller, &req.get_ref().user_id).await?;
                let second_factors = if req.get_ref().with_second_factors {
                    self.core.second_factors(status.id).await?
                } else {
                    Vec::new()
                };
                let email_verified = status.email_verified;
                let (user_id, username, roles, sessions_valid_after) = status_fields(status);
                Ok::<_, Error>(GetUserStatusResponse {
                    user_id,
                    username,
                    roles,
                    sessions_valid_after,
                    email_verified,
                    second_factors,
                })
            }
            .await,
        )
    }

    async fn verify_credentials(
        &self,
        req: Request<VerifyCredentialsRequest>,
    ) -> Result<Response<VerifyCredentialsResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "VerifyCredentials").await?;
                let r = req.into_inner();
                let (login, password) =
                    parse_credentials(&r.login, r.password).map_err(invalid_fields)?;
                let client = SignInClient {
                    address: r.client_address,
                    // Only for a notice: a longer one is cut, not refused.
                    user_agent: r.user_agent.chars().take(512).collect(),
                };
                let check = self
                    .core
                    .verify_credentials(&caller, login, password, &client)
                    .await?;
                let second_factors = match &check {
                    CredentialCheck::Valid(status) => self.core.second_factors(status.id).await?,
                    _ => Vec::new(),
                };
                Ok::<_, Error>(VerifyCredentialsResponse {
                    second_factors,
                    ..credentials_response(check)
                })
            }
            .await,
        )
    }

    async fn send_email_verification(
        &self,
        req: Request<SendEmailVerificationRequest>,
    ) -> Result<Response<SendEmailVerificationResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "SendEmailVerification").await?;
                let target = UserRef::parse(&req.get_ref().id, "id")?;
                self.core.send_email_verification(&caller, target).await?;
                Ok::<_, Error>(SendEmailVerificationResponse {})
            }
            .await,
        )
    }

    async fn confirm_email(
        &self,
        req: Request<ConfirmEmailRequest>,
    ) -> Result<Response<ConfirmEmailResponse>, Status> {
        server::reply(
            async {
                // Open: the token is the proof.
                let (user, email) = self.core.confirm_email(&req.get_ref().token).await?;
                Ok::<_, Error>(ConfirmEmailResponse {
                    user_id: user.to_string(),
                    email,
                })
            }
            .await,
        )
    }

    async fn revert_email_change(
        &self,
        req: Request<RevertEmailChangeRequest>,
    ) -> Result<Response<RevertEmailChangeResponse>, Status> {
        server::reply(
            async {
                let (user, email) = self.core.revert_email_change(&req.get_ref().token).await?;
                Ok::<_, Error>(RevertEmailChangeResponse {
                    user_id: user.to_string(),
                    email,
                })
            }
            .await,
        )
    }

    async fn request_password_reset(
        &self,
        req: Request<RequestPasswordResetRequest>,
    ) -> Result<Response<RequestPasswordResetResponse>, Status> {
        server::reply(
            async {
                self.core
                    .request_password_reset(&req.get_ref().login)
                    .await?;
                Ok::<_, Error>(RequestPasswordResetResponse {})
            }
            .await,
        )
    }

    async fn reset_password(
        &self,
        req: Request<ResetPasswordRequest>,
    ) -> Result<Response<ResetPasswordResponse>, Status> {
        server::reply(
            async {
                let r = req.into_inner();
                let new = Password::parse(r.new_password).ok();
                let user = self.core.reset_password(&r.token, new).await?;
                Ok::<_, Error>(ResetPasswordResponse {
                    user_id: user.to_string(),
                })
            }
            .await,
        )
    }

    async fn lookup_user(
        &self,
        req: Request<LookupUserRequest>,
    ) -> Result<Response<LookupUserResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "LookupUser").await?;
                let login = Login::parse(&req.get_ref().login)
                    .map_err(|e| Error::invalid("login", e.to_string()))?;
                let user = self.core.lookup(&caller, &login).await?;
                Ok::<_, Error>(LookupUserResponse { user: Some(user) })
            }
            .await,
        )
    }

    async fn list_factors(
        &self,
        req: Request<suite_proto::user::ListFactorsRequest>,
    ) -> Result<Response<suite_proto::user::ListFactorsResponse>, Status> {
        self.list_factors_call(req).await
    }

    async fn enroll_totp(
        &self,
        req: Request<suite_proto::user::EnrollTotpRequest>,
    ) -> Result<Response<suite_proto::user::EnrollTotpResponse>, Status> {
        self.enroll_totp_call(req).await
    }

    async fn confirm_totp(
        &self,
        req: Request<suite_proto::user::ConfirmTotpRequest>,
    ) -> Result<Response<suite_proto::user::ConfirmTotpResponse>, Status> {
        self.confirm_totp_call(req).await
    }

    async fn delete_factor(
        &self,
        req: Request<suite_proto::user::DeleteFactorRequest>,
    ) -> Result<Response<suite_proto::user::DeleteFactorResponse>, Status> {
        self.delete_factor_call(req).await
    }

    async fn regenerate_recovery_codes(
        &self,
        req: Request<suite_proto::user::RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<suite_proto::user::RegenerateRecoveryCodesResponse>, Status> {
        self.regenerate_recovery_codes_call(req).await
    }

    async fn reset_factors(
        &self,
        req: Request<suite_proto::user::ResetFactorsRequest>,
    ) -> Result<Response<suite_proto::user::ResetFactorsResponse>, Status> {
        self.reset_factors_call(req).await
    }

    async fn verify_second_factor(
        &self,
        req: Request<suite_proto::user::VerifySecondFactorRequest>,
    ) -> Result<Response<suite_proto::user::VerifySecondFactorResponse>, Status> {
        self.verify_second_factor_call(req).await
    }

    async fn start_passkey_registration(
        &self,
        req: Request<suite_proto::user::StartPasskeyRegistrationRequest>,
    ) -> Result<Response<suite_proto::user::StartPasskeyRegistrationResponse>, Status> {
        self.start_passkey_registration_call(req).await
    }

    async fn finish_passkey_registration(
        &self,
        req: Request<suite_proto::user::FinishPasskeyRegistrationRequest>,
    ) -> Result<Response<suite_proto::user::FinishPasskeyRegistrationResponse>, Status> {
        self.finish_passkey_registration_call(req).await
    }

    async fn rename_factor(
        &self,
        req: Request<suite_proto::user::RenameFactorRequest>,
    ) -> Result<Response<suite_proto::user::RenameFactorResponse>, Status> {
        self.rename_factor_call(req).await
    }

    async fn start_passkey_authentication(
        &self,
        req: Request<suite_proto::user::StartPasskeyAuthenticationRequest>,
    ) -> Result<Response<suite_proto::user::StartPasskeyAuthenticationResponse>, Status> {
        self.start_passkey_authentication_call(req).await
    }

    async fn verify_passkey(
        &self,
        req: Request<suite_proto::user::VerifyPasskeyRequest>,
    ) -> Result<Response<suite_proto::user::VerifyPasskeyResponse>, Status> {
        self.verify_passkey_call(req).await
    }

    async fn import_users(
        &self,
        req: Request<ImportUsersRequest>,
    ) -> Result<Response<ImportUsersResponse>, Status> {
        server::reply(
            async {
                let caller = self.caller(&req, "ImportUsers").await?;
                let outcomes = self.core.import(&caller, &req.get_ref().users).await?;
                Ok::<_, Error>(ImportUsersResponse {
                    results: outcomes.into_iter().map(import_result).collect(),
                })
            }
            .await,
        )
    }
}

fn invalid_fields(bad: Vec<(&'static str, String)>) -> Error {
    Error::InvalidArgument(
        bad.into_iter()
            .map(|(field, why)| FieldViolation::new(field, why))
            .collect(),
    )
}

/// A user's status as both VerifyCredentials and GetUserStatus carry it:
/// (user_id, username, roles, sessions_valid_after).
fn status_fields(s: UserStatus) -> (String, String, Vec<String>, Option<prost_types::Timestamp>) {
    (
        s.id.to_string(),
        s.username,
        s.roles,
        s.sessions_valid_after.map(to_timestamp),
    )
}

fn credentials_response(check: CredentialCheck) -> VerifyCredentialsResponse {
    match check {
        CredentialCheck::Valid(status) => {
            let email_verified = status.email_verified;
            let email = status.email.clone();
            let (user_id, username, roles, sessions_valid_after) = status_fields(status);
            VerifyCredentialsResponse {
                user_id,
                username,
                roles,
                sessions_valid_after,
                outcome: Outcome::Valid.into(),
                retry_after: None,
                email_verified,
                email,
                second_factors: Vec::new(),
            }
        }
        CredentialCheck::EmailUnverified => VerifyCredentialsResponse {
            outcome: Outcome::EmailUnverified.into(),
            ..Default::default()
        },
        CredentialCheck::Invalid => VerifyCredentialsResponse {
            outcome: Outcome::Invalid.into(),
            ..Default::default()
        },
        CredentialCheck::Locked(wait) => VerifyCredentialsResponse {
            outcome: Outcome::Locked.into(),
            retry_after: Some(whole_seconds(wait)),
            ..Default::default()
        },
    }
}

/// A lock's wait in whole seconds, rounded up (at least one), so a client
/// never tries again too early.
fn whole_seconds(wait: std::time::Duration) -> prost_types::Duration {
    let secs = suite_grpc::status::whole_seconds(wait);
    prost_types::Duration {
        seconds: i64::try_from(secs.max(1)).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

fn import_result(outcome: ImportOutcome) -> ImportResult {
    use import_result::Outcome;
    match outcome {
        ImportOutcome::Created(id) => ImportResult {
            outcome: Outcome::Created.into(),
            user_id: id.to_string(),
            reason: String::new(),
        },
        ImportOutcome::Skipped => ImportResult {
            outcome: Outcome::Skipped.into(),
            user_id: String::new(),
            reason: "a live user already has this username or email".into(),
        },
        ImportOutcome::Failed(reason) => ImportResult {
            outcome: Outcome::Failed.into(),
            user_id: String::new(),
            reason,
        },
    }
}
