//! The gateway against a scripted user service: every gRPC status code to
//! its HTTP status and problem, error details, metadata in both directions,
//! the request budget, an upstream that goes away and comes back or vanishes
//! mid-call;
//! server streams as Server-Sent Events (`upstream/sse.rs`); the stop of the
//! real server loop under keep-alive traffic (`upstream/shutdown.rs`);
//! rate-limit keys behind a trusted proxy (`upstream/forwarded.rs`); HEAD
//! wherever GET is (`upstream/head.rs`); scopes of OAuth tokens
//! (`upstream/scopes.rs`); the OAuth endpoints and pages against a scripted
//! OAuthService (`upstream/oidc.rs`).
//! The real services are tested through the gateway in the root package.
// The test binary's helpers fail their test loudly too (clippy.toml lets
// #[test] functions do so, and clippy 1.95 does not see these as tests).
#![allow(clippy::expect_used, clippy::panic)]

// In this binary (one link), not tests targets of their own.
#[path = "upstream/forwarded.rs"]
mod forwarded;
#[path = "upstream/head.rs"]
mod head;
#[path = "upstream/oidc.rs"]
mod oidc;
#[path = "upstream/oidc_provider.rs"]
mod oidc_provider;
#[path = "upstream/scopes.rs"]
mod scopes;
#[path = "upstream/shutdown.rs"]
mod shutdown;
#[path = "upstream/sse.rs"]
mod sse;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use suite_proto::suite::user::v1::{
    ChangePasswordRequest, ChangePasswordResponse, CreateUserRequest, CreateUserResponse,
    DeleteUserRequest, DeleteUserResponse, Event, GetUserRequest, GetUserResponse,
    GetUserStatusRequest, GetUserStatusResponse, ListUsersRequest, ListUsersResponse,
    StreamEventsRequest, StreamEventsResponse, StreamMyEventsRequest, StreamMyEventsResponse,
    UpdateUserRequest, UpdateUserResponse, User, UserUpdated, VerifyCredentialsRequest,
    VerifyCredentialsResponse, event,
    user_service_server::{UserService, UserServiceServer},
};
use suite_tokens::{Audience, Claims, SigningKey, jwks_of};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// What the scripted service saw of the last call.
#[derive(Default)]
struct Seen {
    metadata: Option<tonic::metadata::MetadataMap>,
    /// GetUser and CreateUser calls received.
    get_calls: usize,
    /// GetUser calls of the id "held" waiting for `Scripted::release`.
    held_calls: usize,
    create_calls: usize,
    /// StreamMyEvents: the metadata and `last_event_id` of each call, and
    /// how many of its streams the client has dropped.
    stream_metadata: Option<tonic::metadata::MetadataMap>,
    last_event_ids: Vec<String>,
    streams_dropped: usize,
}

/// A scripted event stream.
type Stream<T> = std::pin::Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

/// The events every StreamMyEvents call sends first.
fn scripted_events() -> Vec<Event> {
    [
        "0190f5c4-0000-7000-8000-000000000001",
        "0190f5c4-0000-7000-8000-000000000002",
    ]
    .into_iter()
    .map(|id| Event {
        id: id.into(),
        r#type: "suite.user.v1.UserUpdated".into(),
        source: "suite-user".into(),
        subject: "01a216e4-4d21-773d-b270-03fa587d21ab".into(),
        time: None,
        data: Some(event::Data::UserUpdated(UserUpdated {
            user: Some(User {
                id: "01a216e4-4d21-773d-b270-03fa587d21ab".into(),
                username: "ada".into(),
                ..User::default()
            }),
            changed_fields: vec!["display_name".into()],
        })),
    })
    .collect()
}

#[derive(Clone, Default)]
struct Scripted {
    seen: Arc<Mutex<Seen>>,
    /// Lets one "held" GetUser answer (a stored permit if none waits yet).
    release: Arc<tokio::sync::Notify>,
}

const SECRET: &str = "SELECT password_hash FROM users at 10.0.0.9:5432";

#[tonic::async_trait]
impl UserService for Scripted {
    /// The id says what to answer.
    async fn get_user(
        &self,
        req: Request<GetUserRequest>,
    ) -> Result<Response<GetUserResponse>, Status> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.metadata = Some(req.metadata().clone());
            seen.get_calls += 1;
        }
        let id = req.into_inner().id;
        if let Some(code) = id.strip_prefix("code-") {
            let code = Code::from_i32(code.parse().map_err(|_| Status::internal("bad script"))?);
            return Err(Status::new(code, format!("scripted {code:?}: {SECRET}")));
        }
        match id.as_str() {
            "bad-request" => {
                let mut details = ErrorDetails::new();
                details.add_bad_request_violation("user.display_name", "is too long");
                Err(Status::with_error_details(
                    Code::InvalidArgument,
                    "invalid user",
                    details,
                ))
            }
            "throttled" => Err(Status::with_error_details(
                Code::ResourceExhausted,
                "slow down",
                ErrorDetails::with_retry_info(Some(Duration::from_millis(2500))),
            )),
            "slow" => {
                tokio::time::sleep(Duration::from_secs(3)).await;
                Err(Status::internal("too late"))
            }
            // In flight for as long as the test wants.
            "held" => {
                if let Ok(mut seen) = self.seen.lock() {
                    seen.held_calls += 1;
                }
                self.release.notified().await;
                Ok(Response::new(GetUserResponse {
                    user: Some(User {
                        id,
                        username: "ada".into(),
                        ..User::default()
                    }),
                }))
            }
            "meta-error" => {
                let mut status = Status::not_found("no such user");
                status
                    .metadata_mut()
                    .insert("content-language", "fr".parse().expect("value"));
                status
                    .metadata_mut()
                    .insert("x-upstream-secret", "s3cr3t".parse().expect("value"));
                Err(status)
            }
            _ => {
                let mut response = Response::new(GetUserResponse {
                    user: Some(User {
                        id,
                        username: "ada".into(),
                        ..User::default()
                    }),
                });
                let md = response.metadata_mut();
                md.insert("content-language", "en".parse().expect("value"));
                md.insert("deprecation", "@1767225600".parse().expect("value"));
                md.insert("x-upstream-secret", "s3cr3t".parse().expect("value"));
                Ok(response)
            }
        }
    }

    /// Always Unavailable.
    async fn create_user(
        &self,
        _: Request<CreateUserRequest>,
    ) -> Result<Response<CreateUserResponse>, Status> {
        if let Ok(mut seen) = self.seen.lock() {
            seen.create_calls += 1;
        }
        Err(Status::unavailable("scripted"))
    }
    async fn list_users(
        &self,
        _: Request<ListUsersRequest>,
    ) -> Result<Response<ListUsersResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
    async fn update_user(
        &self,
        _: Request<UpdateUserRequest>,
    ) -> Result<Response<UpdateUserResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
    async fn delete_user(
        &self,
        _: Request<DeleteUserRequest>,
    ) -> Result<Response<DeleteUserResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
    async fn change_password(
        &self,
        _: Request<ChangePasswordRequest>,
    ) -> Result<Response<ChangePasswordResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
    async fn verify_credentials(
        &self,
        _: Request<VerifyCredentialsRequest>,
    ) -> Result<Response<VerifyCredentialsResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
    async fn get_user_status(
        &self,
        _: Request<GetUserStatusRequest>,
    ) -> Result<Response<GetUserStatusResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn lookup_user(
        &self,
        _: Request<suite_proto::user::LookupUserRequest>,
    ) -> Result<Response<suite_proto::user::LookupUserResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn import_users(
        &self,
        _: Request<suite_proto::user::ImportUsersRequest>,
    ) -> Result<Response<suite_proto::user::ImportUsersResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn send_email_verification(
        &self,
        _: Request<suite_proto::user::SendEmailVerificationRequest>,
    ) -> Result<Response<suite_proto::user::SendEmailVerificationResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn confirm_email(
        &self,
        _: Request<suite_proto::user::ConfirmEmailRequest>,
    ) -> Result<Response<suite_proto::user::ConfirmEmailResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn revert_email_change(
        &self,
        _: Request<suite_proto::user::RevertEmailChangeRequest>,
    ) -> Result<Response<suite_proto::user::RevertEmailChangeResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn request_password_reset(
        &self,
        _: Request<suite_proto::user::RequestPasswordResetRequest>,
    ) -> Result<Response<suite_proto::user::RequestPasswordResetResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn reset_password(
        &self,
        _: Request<suite_proto::user::ResetPasswordRequest>,
    ) -> Result<Response<suite_proto::user::ResetPasswordResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn list_factors(
        &self,
        _: Request<suite_proto::user::ListFactorsRequest>,
    ) -> Result<Response<suite_proto::user::ListFactorsResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn enroll_totp(
        &self,
        _: Request<suite_proto::user::EnrollTotpRequest>,
    ) -> Result<Response<suite_proto::user::EnrollTotpResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn confirm_totp(
        &self,
        _: Request<suite_proto::user::ConfirmTotpRequest>,
    ) -> Result<Response<suite_proto::user::ConfirmTotpResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn delete_factor(
        &self,
        _: Request<suite_proto::user::DeleteFactorRequest>,
    ) -> Result<Response<suite_proto::user::DeleteFactorResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn regenerate_recovery_codes(
        &self,
        _: Request<suite_proto::user::RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<suite_proto::user::RegenerateRecoveryCodesResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn start_passkey_registration(
        &self,
        _: Request<suite_proto::user::StartPasskeyRegistrationRequest>,
    ) -> Result<Response<suite_proto::user::StartPasskeyRegistrationResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn finish_passkey_registration(
        &self,
        _: Request<suite_proto::user::FinishPasskeyRegistrationRequest>,
    ) -> Result<Response<suite_proto::user::FinishPasskeyRegistrationResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn rename_factor(
        &self,
        _: Request<suite_proto::user::RenameFactorRequest>,
    ) -> Result<Response<suite_proto::user::RenameFactorResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn start_passkey_authentication(
        &self,
        _: Request<suite_proto::user::StartPasskeyAuthenticationRequest>,
    ) -> Result<Response<suite_proto::user::StartPasskeyAuthenticationResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn verify_passkey(
        &self,
        _: Request<suite_proto::user::VerifyPasskeyRequest>,
    ) -> Result<Response<suite_proto::user::VerifyPasskeyResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn reset_factors(
        &self,
        _: Request<suite_proto::user::ResetFactorsRequest>,
    ) -> Result<Response<suite_proto::user::ResetFactorsResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn verify_second_factor(
        &self,
        _: Request<suite_proto::user::VerifySecondFactorRequest>,
    ) -> Result<Response<suite_proto::user::VerifySecondFactorResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    type StreamMyEventsStream = Stream<StreamMyEventsResponse>;
    type StreamEventsStream = Stream<StreamEventsResponse>;

    /// The scripted events, then (with `last_event_id` "end-with-error") an
    /// error, else nothing until the client goes, which is counted.
    async fn stream_my_events(
        &self,
        req: Request<StreamMyEventsRequest>,
    ) -> Result<Response<Self::StreamMyEventsStream>, Status> {
        let last_event_id = req.get_ref().last_event_id.clone();
        if let Ok(mut seen) = self.seen.lock() {
            seen.stream_metadata = Some(req.metadata().clone());
            seen.last_event_ids.push(last_event_id.clone());
        }
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let seen = self.seen.clone();
        tokio::spawn(async move {
            for event in scripted_events() {
                let message = StreamMyEventsResponse { event: Some(event) };
                if tx.send(Ok(message)).await.is_err() {
                    break;
                }
            }
            if last_event_id == "end-with-error" {
                let _ = tx
                    .send(Err(Status::unauthenticated("access token expired")))
                    .await;
                return;
            }
            tx.closed().await;
            if let Ok(mut seen) = seen.lock() {
                seen.streams_dropped += 1;
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    /// Refused before any event, as for a caller who is not an admin.
    async fn stream_events(
        &self,
        _: Request<StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        Err(Status::permission_denied(
            "only admins may read every user's events",
        ))
    }
}

/// A running scripted service: fire `stop`, then await `task` for it to be gone.
struct Upstream {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// The scripted service on `listener`.
fn serve_upstream(listener: TcpListener, service: Scripted) -> Upstream {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = tonic::transport::Server::builder()
            .add_service(UserServiceServer::new(service))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await;
    });
    Upstream { stop, task }
}

struct Fixture {
    gateway: SocketAddr,
    upstream: SocketAddr,
    token: String,
    key: SigningKey,
    /// What the gateway was started with.
    config: suite_gateway::Config,
    seen: Scripted,
    stop_upstream: Option<Upstream>,
}

/// A user's access token that expires `ttl_secs` from now.
fn sign(key: &SigningKey, ttl_secs: i64) -> String {
    let now = jsonwebtoken::get_current_timestamp() as i64;
    key.sign(&Claims {
        iss: "suite-auth".into(),
        aud: Audience::One("suite".into()),
        sub: "01a216e4-4d21-773d-b270-03fa587d21ab".into(),
        exp: now + ttl_secs,
        iat: now,
        nbf: now,
        jti: format!("t{ttl_secs}"),
        sid: None,
        roles: vec!["user".into()],
        client_id: None,
        scope: None,
        amr: Vec::new(),
        auth_time: None,
        pat: false,
    })
    .expect("token")
}

async fn fixture(budget_ms: u64) -> Fixture {
    fixture_with(budget_ms, |_| {}).await
}

/// The gateway in front of the scripted service, configured by `tweak`.
async fn fixture_with(budget_ms: u64, tweak: impl FnOnce(&mut suite_gateway::Config)) -> Fixture {
    let key = SigningKey::generate("k1").expect("key");
    let jwks =
        serde_json::to_string(&jwks_of(std::slice::from_ref(&key)).expect("jwks")).expect("json");
    let token = sign(&key, 600);

    let upstream_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let upstream = upstream_listener.local_addr().expect("addr");
    let seen = Scripted::default();
    let stop_upstream = serve_upstream(upstream_listener, seen.clone());

    let mut config = suite_testkit::hermetic::<suite_gateway::Config>();
    config.user_service_url = format!("http://{upstream}");
    config.auth_service_url = "http://127.0.0.1:9".into();
    config.keys.jwks = Some(jwks.parse().expect("jwks"));
    config.request_timeout = Duration::from_millis(budget_ms);
    tweak(&mut config);
    let gateway = serve_gateway(&config).await;
    Fixture {
        gateway,
        upstream,
        token,
        key,
        config,
        seen,
        stop_upstream: Some(stop_upstream),
    }
}

/// The gateway's public router built from `config`, served on a task of
/// its own (with the peer's address) at the address returned.
async fn serve_gateway(config: &suite_gateway::Config) -> SocketAddr {
    let router = suite_gateway::Builder::new(config)
        .build()
        .expect("app")
        .public;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    addr
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    json: serde_json::Value,
}

impl Fixture {
    /// The metadata of the last call that `which` picks of what the
    /// service saw, read a value at a time by name.
    fn seen_metadata(
        &self,
        which: impl Fn(&Seen) -> Option<tonic::metadata::MetadataMap>,
    ) -> impl Fn(&str) -> Option<String> {
        let md = which(&self.seen.seen.lock().expect("lock")).expect("a call");
        move |name| {
            md.get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        }
    }

    async fn get(&self, path: &str, extra: &[(&str, &str)]) -> Reply {
        self.send("GET", path, None, extra).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("authorization", format!("Bearer {}", self.token));
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        let body = match body {
            Some(json) => {
                req = req.header("content-type", "application/json");
                Full::new(Bytes::from(json.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        let answer =
            suite_testkit::http::send(self.gateway, req.body(body).expect("request")).await;
        Reply {
            status: answer.status,
            json: serde_json::from_slice(&answer.body).unwrap_or(serde_json::Value::Null),
            headers: answer.headers,
        }
    }
}

fn header<'a>(r: &'a Reply, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn every_grpc_code_becomes_its_http_status_without_internal_detail() {
    let f = fixture(5_000).await;
    let expected = [
        (Code::Cancelled, 499),
        (Code::Unknown, 500),
        (Code::InvalidArgument, 400),
        (Code::DeadlineExceeded, 504),
        (Code::NotFound, 404),
        (Code::AlreadyExists, 409),
        (Code::PermissionDenied, 403),
        (Code::ResourceExhausted, 429),
        (Code::FailedPrecondition, 400),
        (Code::Aborted, 409),
        (Code::OutOfRange, 400),
        (Code::Unimplemented, 501),
        (Code::Internal, 500),
        (Code::Unavailable, 503),
        (Code::DataLoss, 500),
        (Code::Unauthenticated, 401),
    ];
    for (code, status) in expected {
        let r = f
            .get(&format!("/api/v1/users/code-{}", code as i32), &[])
            .await;
        assert_eq!(r.status, status, "{code:?}: {}", r.json);
        assert_eq!(
            header(&r, "content-type"),
            Some("application/problem+json"),
            "{code:?}"
        );
        assert_eq!(r.json["status"], status, "{code:?}");
        assert!(r.json["requestId"].is_string(), "{code:?}: {}", r.json);
        // Our own services' messages pass for the codes a client can act
        // on; the codes that mean "our fault" or "the network" never do.
        let passes = !matches!(
            code,
            Code::Unknown
                | Code::Internal
                | Code::DataLoss
                | Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Cancelled
        );
        let body = r.json.to_string();
        assert_eq!(body.contains("SELECT"), passes, "{code:?}: {body}");
        assert!(!body.contains("x-upstream"), "{code:?}: {body}");
        if code == Code::Unauthenticated {
            assert_eq!(header(&r, "www-authenticate"), Some("Bearer"));
        }
    }
}

#[tokio::test]
async fn error_details_become_field_errors_and_retry_after() {
    let f = fixture(5_000).await;
    let bad = f.get("/api/v1/users/bad-request", &[]).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json["errors"][0]["field"], "user.displayName");
    assert_eq!(bad.json["errors"][0]["message"], "is too long");
    let throttled = f.get("/api/v1/users/throttled", &[]).await;
    assert_eq!(throttled.status, 429);
    // 2.5 s, rounded up to whole seconds.
    assert_eq!(header(&throttled, "retry-after"), Some("3"));
}

#[tokio::test]
async fn metadata_crosses_only_through_the_allowlists() {
    let f = fixture(5_000).await;
    let r = f
        .get(
            "/api/v1/users/u1",
            &[
                ("x-request-id", "req-42"),
                (
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                ),
                ("accept-language", "fr-CH"),
                ("cookie", "session=1"),
                ("x-custom", "no"),
                ("x-forwarded-for", "203.0.113.9"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.json);
    assert_eq!(r.json["username"], "ada");
    // Back to the client: the allowlisted response metadata only.
    assert_eq!(header(&r, "content-language"), Some("en"));
    assert_eq!(header(&r, "deprecation"), Some("@1767225600"));
    assert_eq!(header(&r, "x-upstream-secret"), None);
    assert_eq!(header(&r, "x-request-id"), Some("req-42"));

    // To the service: the allowlisted request headers only.
    let get = f.seen_metadata(|seen| seen.metadata.clone());
    assert_eq!(get("authorization"), Some(format!("Bearer {}", f.token)));
    assert_eq!(get("x-request-id").as_deref(), Some("req-42"));
    assert_eq!(get("accept-language").as_deref(), Some("fr-CH"));
    assert!(get("traceparent").is_some());
    assert_eq!(get("cookie"), None);
    assert_eq!(get("x-custom"), None);
    // The client address is the peer (no trusted proxies configured), not
    // what the client claims.
    assert_eq!(get("x-forwarded-for").as_deref(), Some("127.0.0.1"));
    // The budget travels as grpc-timeout.
    let timeout = get("grpc-timeout").expect("grpc-timeout");
    assert!(
        timeout.ends_with('m') || timeout.ends_with('u'),
        "{timeout}"
    );

    let e = f.get("/api/v1/users/meta-error", &[]).await;
    assert_eq!(e.status, 404);
    assert_eq!(header(&e, "content-language"), Some("fr"));
    assert_eq!(header(&e, "x-upstream-secret"), None);
}

#[tokio::test]
async fn a_spent_budget_is_504_on_time() {
    let f = fixture(300).await;
    let start = Instant::now();
    let r = f.get("/api/v1/users/slow", &[]).await;
    assert_eq!(r.status, 504, "{}", r.json);
    assert_eq!(r.json["detail"], "the request took too long");
    // Well before the service's 3 s: the budget, not the service, decided.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let timeout = f
        .seen
        .seen
        .lock()
        .expect("lock")
        .metadata
        .as_ref()
        .and_then(|md| md.get("grpc-timeout")?.to_str().ok().map(str::to_owned))
        .expect("grpc-timeout");
    let ms: u64 = timeout
        .strip_suffix('m')
        .and_then(|n| n.parse().ok())
        .or_else(|| {
            timeout
                .strip_suffix('u')
                .and_then(|n| n.parse::<u64>().ok())
                .map(|u| u / 1000)
        })
        .expect("a timeout in ms or µs");
    assert!(ms <= 300, "{timeout}");
}

#[tokio::test]
async fn an_upstream_that_goes_away_is_503_quickly_and_served_again_when_back() {
    let mut f = fixture(5_000).await;
    assert_eq!(f.get("/api/v1/users/u1", &[]).await.status, 200);

    // Stopped, and its connections closed.
    let upstream = f.stop_upstream.take().expect("running");
    let _ = upstream.stop.send(());
    tokio::time::timeout(Duration::from_secs(5), upstream.task)
        .await
        .expect("the upstream stops")
        .expect("cleanly");
    let start = Instant::now();
    let down = f.get("/api/v1/users/u1", &[]).await;
    assert_eq!(down.status, 503, "{}", down.json);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert!(
        !down
            .json
            .to_string()
            .contains(&f.upstream.port().to_string()),
        "the address leaked: {}",
        down.json
    );

    // Back on the same address: served again, with no restart of the gateway.
    let listener = TcpListener::bind(f.upstream).await.expect("rebind");
    f.stop_upstream = Some(serve_upstream(listener, f.seen.clone()));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = f.get("/api/v1/users/u1", &[]).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.json);
        assert!(Instant::now() < deadline, "not served again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_get_that_finds_the_service_unavailable_is_retried_and_a_post_is_not() {
    let f = fixture(5_000).await;
    let calls = |f: &Fixture| {
        let seen = f.seen.seen.lock().expect("lock");
        (seen.get_calls, seen.create_calls)
    };
    let r = f.get("/api/v1/users/code-14", &[]).await;
    assert_eq!(r.status, 503, "{}", r.json);
    // Sent once and retried twice (reads are safe to repeat).
    assert_eq!(calls(&f), (3, 0));
    // So is a call cancelled with budget left (its connection closed).
    let r = f.get("/api/v1/users/code-1", &[]).await;
    assert_eq!(r.status, 499, "{}", r.json);
    assert_eq!(calls(&f), (6, 0));
    // Other codes are not retried.
    let r = f.get("/api/v1/users/code-13", &[]).await;
    assert_eq!(r.status, 500, "{}", r.json);
    assert_eq!(calls(&f), (7, 0));
    // A write is never repeated by the gateway.
    let body = serde_json::json!({
        "username": "ada",
        "email": "ada@example.com",
        "password": "analytical engine 1843",
    });
    let r = f.send("POST", "/api/v1/users", Some(body), &[]).await;
    assert_eq!(r.status, 503, "{}", r.json);
    assert_eq!(calls(&f), (7, 1));
}

#[tokio::test]
async fn retries_stay_within_the_budget() {
    let f = fixture(250).await;
    let start = Instant::now();
    let r = f.get("/api/v1/users/code-14", &[]).await;
    // The second pause (300 ms) would overrun the 250 ms budget: not taken.
    assert_eq!(r.status, 503, "{}", r.json);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(f.seen.seen.lock().expect("lock").get_calls, 2);
}

/// A TCP relay to the upstream whose connections can all be cut at once,
/// as when the service's process is killed mid-call; after the cut it
/// accepts nothing more (the process is gone).
struct Relay {
    addr: SocketAddr,
    cut: tokio::sync::watch::Sender<bool>,
}

async fn relay(target: Arc<std::sync::OnceLock<SocketAddr>>) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (cut, mut cut_seen) = tokio::sync::watch::channel(false);
    let watch = cut.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = cut_seen.changed() => return,
            };
            let Ok((mut client, _)) = accepted else {
                return;
            };
            let Some(target) = target.get().copied() else {
                return;
            };
            let mut cut_seen = watch.subscribe();
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    _ = cut_seen.changed() => {}
                }
            });
        }
    });
    Relay { addr, cut }
}

/// The user service vanishes while a call is in flight (its connections
/// cut, nothing listening after): the call is a 503 with Retry-After, a
/// fault worth retrying, never a 500 "internal error" (tonic reports the
/// broken call as Unknown).
#[tokio::test]
async fn a_service_that_vanishes_mid_call_is_503_with_retry_after() {
    let target = Arc::new(std::sync::OnceLock::new());
    let relay = relay(target.clone()).await;
    let relay_addr = relay.addr;
    let f = fixture_with(10_000, |c| {
        c.user_service_url = format!("http://{relay_addr}");
    })
    .await;
    target.set(f.upstream).expect("set once");
    assert_eq!(f.get("/api/v1/users/u1", &[]).await.status, 200);

    // Cut once the call is in the service's hands.
    let cut = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while f.seen.seen.lock().map(|s| s.held_calls).unwrap_or(0) == 0 {
            assert!(Instant::now() < deadline, "the call never arrived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = relay.cut.send(true);
    };
    let (reply, ()) = tokio::join!(f.get("/api/v1/users/held", &[]), cut);
    assert_eq!(reply.status, 503, "{}", reply.json);
    assert_eq!(
        reply
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1"),
        "{:?}",
        reply.headers
    );
}
