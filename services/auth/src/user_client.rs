//! The user service, as the auth service sees it: credential checks and
//! user status over gRPC, authenticated with a [`ServiceTokens`] token. The
//! channel is lazy and balanced over every replica, calls have timeouts, and
//! these read-only calls are retried when the user service is Unavailable
//! (after telling the channel, so the retry meets another replica).

use crate::{error::Error, service_token::ServiceTokens};
use chrono::{DateTime, Utc};
use std::time::{Duration, Instant};
use suite_grpc::{
    balance::{self, Balanced},
    config::UpstreamArgs,
    retry::{self, Retry},
};
use suite_proto::{
    Login, Password,
    time::from_timestamp,
    user::{
        GetUserStatusRequest, VerifyCredentialsRequest, user_service_client::UserServiceClient,
        verify_credentials_response::Outcome,
    },
};
use suite_telemetry::grpc_client::{TracedChannel, traced};
use tonic::{Code, Request, Status};
use uuid::Uuid;

/// What the auth service needs of a user to issue tokens.
#[derive(Debug, Clone)]
pub struct UserStatus {
    pub id: Uuid,
    pub username: String,
    pub roles: Vec<String>,
    /// Sessions begun before this instant are over.
    pub sessions_valid_after: Option<DateTime<Utc>>,
    /// The kinds of the user's second factors (known after a password
    /// check; empty otherwise).
    pub second_factors: Vec<String>,
}

impl UserStatus {
    /// The status the user service answered with, read at the edge.
    fn read(
        user_id: &str,
        username: String,
        roles: Vec<String>,
        sessions_valid_after: Option<prost_types::Timestamp>,
    ) -> Result<Self, Error> {
        Ok(Self {
            id: Uuid::parse_str(user_id)
                .map_err(|_| Error::Internal("the user service returned a bad user id".into()))?,
            username,
            roles,
            sessions_valid_after: sessions_valid_after.as_ref().and_then(from_timestamp),
            second_factors: Vec::new(),
        })
    }
}

pub enum Credentials {
    Valid(UserStatus),
    Invalid,
    /// The account is throttled for this long: the password was not checked.
    Locked(Duration),
    /// The password is right, but sign-in waits for the email address to be
    /// verified (the user service mailed a new link).
    EmailUnverified,
}

/// What a second factor's check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FactorAnswer {
    /// Right; the RFC 8176 `amr` value of its method (`otp`, or `rc` for a
    /// recovery code).
    Valid(String),
    Invalid,
    /// Too many wrong codes or passwords: not checked.
    Locked(Duration),
}

/// What a passwordless passkey sign-in found.
pub enum PasskeyCheck {
    /// The user, and the passkey's `amr` method.
    Valid(UserStatus, String),
    Invalid,
    /// The passkey is the user's, but the address is not verified yet
    /// (REQUIRE_VERIFIED_EMAIL): a new link was mailed.
    EmailUnverified,
}

/// A passkey's assertion for a ceremony begun with `binding`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PasskeyAnswer<'a> {
    pub ceremony: &'a str,
    pub binding: &'a str,
    pub assertion_json: &'a str,
}

pub struct UserDirectory {
    upstream: Balanced,
    client: UserServiceClient<TracedChannel>,
    tokens: ServiceTokens,
    /// The longest any call may take, whatever the caller's deadline.
    timeout: Duration,
}

impl UserDirectory {
    /// A directory over a lazy channel balanced over `url`'s addresses
    /// (nothing connects until the first call).
    pub fn new(
        url: &str,
        connect_timeout: Duration,
        timeout: Duration,
        upstream: &UpstreamArgs,
        tokens: ServiceTokens,
    ) -> Result<Self, String> {
        let settings = balance::Settings {
            connect_timeout,
            timeout: Some(timeout),
            resolve_interval: upstream.upstream_resolve_interval,
            keepalive: upstream.keepalive(),
        };
        let upstream = balance::channel(url, settings).map_err(|e| e.to_string())?;
        Ok(Self {
            // Every call gets a client span and carries the trace on.
            client: UserServiceClient::new(traced(upstream.channel(), url)),
            upstream,
            tokens,
            timeout,
        })
    }

    /// Checks a password with the user service, which throttles wrong ones
    /// per account and `client_address`.
    pub async fn verify(
        &self,
        login: &Login,
        password: &Password,
        client_address: &str,
        user_agent: &str,
    ) -> Result<Credentials, Error> {
        let msg = VerifyCredentialsRequest {
            login: login.as_str().into(),
            password: password.expose().into(),
            client_address: client_address.into(),
            user_agent: user_agent.chars().take(512).collect(),
        };
        let result = self
            .call(
                |mut client, req| async move { client.verify_credentials(req).await },
                msg,
            )
            .await;
        // What the check found is in the answer; a status is about the call.
        let answer = result.map_err(upstream)?;
        match answer.outcome() {
            Outcome::Valid => Ok(Credentials::Valid(UserStatus {
                second_factors: answer.second_factors,
                ..UserStatus::read(
                    &answer.user_id,
                    answer.username,
                    answer.roles,
                    answer.sessions_valid_after,
                )?
            })),
            Outcome::Invalid => Ok(Credentials::Invalid),
            Outcome::EmailUnverified => Ok(Credentials::EmailUnverified),
            Outcome::Locked => {
                let wait = answer
                    .retry_after
                    .and_then(|d| Duration::try_from(d).ok())
                    .unwrap_or(Duration::from_secs(1));
                Ok(Credentials::Locked(wait))
            }
            Outcome::Unspecified => Err(Error::Internal(
                "the user service's credential check has no outcome (an older user service?)"
                    .into(),
            )),
        }
    }

    /// Checks a code of `user`'s second factor with the user service, which
    /// throttles wrong ones as it does passwords.
    pub async fn verify_factor(
        &self,
        user: Uuid,
        code: &str,
        passkey: Option<PasskeyAnswer<'_>>,
        client_address: &str,
    ) -> Result<FactorAnswer, Error> {
        use suite_proto::user::verify_second_factor_response::Outcome;
        let passkey = passkey.unwrap_or_default();
        let msg = suite_proto::user::VerifySecondFactorRequest {
            user_id: user.to_string(),
            code: code.to_owned(),
            client_address: client_address.to_owned(),
            ceremony: passkey.ceremony.to_owned(),
            assertion_json: passkey.assertion_json.to_owned(),
            binding: passkey.binding.to_owned(),
        };
        let answer = self
            .call(
                |mut client, req| async move { client.verify_second_factor(req).await },
                msg,
            )
            .await
            .map_err(upstream)?;
        match answer.outcome() {
            Outcome::Valid => Ok(FactorAnswer::Valid(answer.method)),
            Outcome::Invalid => Ok(FactorAnswer::Invalid),
            Outcome::Locked => Ok(FactorAnswer::Locked(
                answer
                    .retry_after
                    .and_then(|d| Duration::try_from(d).ok())
                    .unwrap_or(Duration::from_secs(1)),
            )),
            Outcome::Unspecified => Err(Error::Internal(
                "the user service's factor check has no outcome".into(),
            )),
        }
    }

    /// Begins a passkey ceremony bound to `binding`: for `user`'s passkeys,
    /// or for any discoverable one. The ceremony and the browser's options.
    pub async fn start_passkey(
        &self,
        user: Option<Uuid>,
        binding: &str,
    ) -> Result<(String, String), Error> {
        let msg = suite_proto::user::StartPasskeyAuthenticationRequest {
            user_id: user.map(|u| u.to_string()).unwrap_or_default(),
            binding: binding.to_owned(),
        };
        let r = self
            .call(
                |mut client, req| async move { client.start_passkey_authentication(req).await },
                msg,
            )
            .await
            .map_err(upstream)?;
        Ok((r.ceremony, r.options_json))
    }

    /// A passwordless sign-in's passkey assertion: the user it names and
    /// the passkey's `amr` method, if it is good.
    pub async fn verify_passkey(
        &self,
        answer: PasskeyAnswer<'_>,
        client_address: &str,
    ) -> Result<PasskeyCheck, Error> {
        use suite_proto::user::verify_second_factor_response::Outcome;
        let msg = suite_proto::user::VerifyPasskeyRequest {
            ceremony: answer.ceremony.to_owned(),
            assertion_json: answer.assertion_json.to_owned(),
            binding: answer.binding.to_owned(),
            client_address: client_address.to_owned(),
        };
        let r = self
            .call(
                |mut client, req| async move { client.verify_passkey(req).await },
                msg,
            )
            .await
            .map_err(upstream)?;
        if r.email_unverified {
            return Ok(PasskeyCheck::EmailUnverified);
        }
        if r.outcome() != Outcome::Valid {
            return Ok(PasskeyCheck::Invalid);
        }
        let status = UserStatus::read(&r.user_id, r.username, r.roles, r.sessions_valid_after)?;
        Ok(PasskeyCheck::Valid(status, r.method))
    }

    /// The user's status; `None` if the user does not exist (any more).
    pub async fn status(&self, user_id: Uuid) -> Result<Option<UserStatus>, Error> {
        self.status_of(user_id, false).await
    }

    /// [`Self::status`] with the kinds of the user's second factors.
    pub async fn status_with_factors(&self, user_id: Uuid) -> Result<Option<UserStatus>, Error> {
        self.status_of(user_id, true).await
    }

    async fn status_of(
        &self,
        user_id: Uuid,
        with_second_factors: bool,
    ) -> Result<Option<UserStatus>, Error> {
        let msg = GetUserStatusRequest {
            user_id: user_id.to_string(),
            with_second_factors,
        };
        let result = self
            .call(
                |mut client, req| async move { client.get_user_status(req).await },
                msg,
            )
            .await;
        match result {
            Ok(r) => {
                let mut status =
                    UserStatus::read(&r.user_id, r.username, r.roles, r.sessions_valid_after)?;
                status.second_factors = r.second_factors;
                Ok(Some(status))
            }
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(upstream(s)),
        }
    }

    /// The user's profile (for UserInfo); `None` if the user does not exist.
    pub async fn profile(&self, user_id: Uuid) -> Result<Option<suite_proto::user::User>, Error> {
        let msg = suite_proto::user::GetUserRequest {
            id: user_id.to_string(),
        };
        let result = self
            .call(
                |mut client, req| async move { client.get_user(req).await },
                msg,
            )
            .await;
        match result {
            Ok(r) => Ok(r.user),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(upstream(s)),
        }
    }

    /// One call with the service token (all are reads, so retried as
    /// [`retry`] says), within what is left of the incoming call's deadline
    /// (capped by our own timeout).
    async fn call<M, R, F, Fut>(&self, f: F, msg: M) -> Result<R, Status>
    where
        M: Clone,
        F: Fn(UserServiceClient<TracedChannel>, Request<M>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, Status>>,
    {
        // A spent deadline is DeadlineExceeded there, before any call.
        let deadline = Instant::now() + suite_grpc::deadline::outgoing_timeout(self.timeout);
        retry::call(&self.upstream, Retry::ReadOnly, deadline, |left| {
            let (f, msg) = (&f, msg.clone());
            async move {
                let token = self.tokens.token().await.map_err(Status::from)?;
                let mut req = Request::new(msg);
                req.set_timeout(left);
                let bearer = format!("Bearer {token}")
                    .parse()
                    .map_err(|_| Status::internal("service token is not ASCII"))?;
                req.metadata_mut().insert("authorization", bearer);
                f(self.client.clone(), req)
                    .await
                    .map(tonic::Response::into_inner)
            }
        })
        .await
    }
}

/// The user service failing a call: down, slow or overloaded is
/// Unavailable (retryable); a refused service token is a misconfiguration
/// (the services disagree on keys, audiences or roles), logged with its
/// cause and Unavailable to the client — never "invalid credentials";
/// anything else is our bug (logged, Internal).
fn upstream(s: Status) -> Error {
    match s.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::ResourceExhausted => {
            Error::Unavailable(format!("user service: {}", s.message()))
        }
        Code::Unauthenticated | Code::PermissionDenied => {
            tracing::error!(
                code = ?s.code(),
                reason = s.message(),
                "the user service refused this service's token: check that both services share \
                 the signing keys (JWKS), the audience and the issuer"
            );
            Error::Unavailable(format!(
                "the user service refused the service token ({:?}): {}",
                s.code(),
                s.message()
            ))
        }
        code => Error::Internal(format!("user service answered {code:?}: {}", s.message())),
    }
}
