//! The JSON endpoints: discovery, token, device authorization, userinfo,
//! introspection and revocation (registration: `registration`). OAuth errors are answered in RFC 6749 §5.2's shape (userinfo
//! in RFC 6750's `WWW-Authenticate`); a failed call to the auth service is
//! the API's problem (503 with `Retry-After` when it is unavailable).

use super::{
    AUTHORIZE_PATH, DEVICE_AUTHORIZATION_PATH, INTROSPECT_PATH, JWKS_PATH, LOGOUT_PATH,
    REGISTER_PATH, REVOKE_PATH, TOKEN_PATH, USERINFO_PATH, Visit,
    client_auth::{self, ClientAuthError, Credentials},
    form::Params,
    respond, too_many,
};
use crate::{contract::routes::RateClass, http::problem::Problem};
use axum::{
    body::Bytes,
    response::{IntoResponse, Response},
};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use std::net::IpAddr;
use suite_proto::auth::{
    ClientAuthentication, DeviceAuthorization, DeviceAuthorizeRequest, DeviceAuthorizeResponse,
    GetProviderConfigurationRequest, IntrospectRequest, IntrospectResponse, Introspection,
    OAuthError, RegisterClientResponse, RegisteredClient, RevokeRequest, RevokeResponse,
    TokenRequest, TokenResponse, Tokens, UserInfoClaims, UserInfoRequest, UserInfoResponse,
    device_authorize_response, introspect_response, o_auth_service_client::OAuthServiceClient,
    register_client_response, token_response, user_info_response,
};
use suite_telemetry::grpc_client::TracedChannel;

/// An OAuth error answer (RFC 6749 §5.2).
pub struct OAuthProblem {
    pub status: StatusCode,
    pub error: String,
    pub description: String,
    /// `invalid_client` after Basic: the challenge to answer with.
    pub basic_challenge: bool,
}

impl OAuthProblem {
    pub fn new(error: &str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: error.to_owned(),
            description: description.into(),
            basic_challenge: false,
        }
    }

    /// The auth service's answer, with the status RFC 6749 gives its code.
    pub fn from_answer(e: OAuthError, basic: bool) -> Self {
        let client = e.error == "invalid_client";
        Self {
            status: if client {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            },
            error: e.error,
            description: e.error_description,
            basic_challenge: client && basic,
        }
    }
}

impl IntoResponse for OAuthProblem {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.error));
        if !self.description.is_empty() {
            body.insert("error_description".into(), Value::String(self.description));
        }
        let mut response = no_store_json(self.status, &Value::Object(body));
        if self.basic_challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"suite\", charset=\"UTF-8\""),
            );
        }
        response
    }
}

/// So that a handler's early answer may be an OAuth error, with `?`.
impl From<OAuthProblem> for Response {
    fn from(p: OAuthProblem) -> Self {
        p.into_response()
    }
}

/// JSON that no cache keeps (RFC 6749 §5.1: `no-store`, and `Pragma` for
/// HTTP/1.0 caches).
pub fn no_store_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
            (header::PRAGMA, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// A failed call: the API's problem for its status.
fn failed(status: &tonic::Status) -> Response {
    tracing::info!(code = ?status.code(), "OAuthService call failed: {}", status.message());
    Problem::from_status(status).into_response()
}

/// What the client-authentication error answers.
fn refused_client(e: ClientAuthError) -> OAuthProblem {
    match e {
        ClientAuthError::Invalid(why) => OAuthProblem::new("invalid_request", why),
        ClientAuthError::Missing => {
            let mut p = OAuthProblem::new("invalid_client", "no client authentication");
            p.status = StatusCode::UNAUTHORIZED;
            p
        }
        ClientAuthError::BadBasic => {
            let mut p = OAuthProblem::new("invalid_client", "malformed Basic credentials");
            p.status = StatusCode::UNAUTHORIZED;
            p.basic_challenge = true;
            p
        }
    }
}

/// A client-authenticated form: its parameters and credentials.
fn client_form(headers: &HeaderMap, body: &[u8]) -> Result<(Params, Credentials), OAuthProblem> {
    let form = Params::from_body(headers, body)
        .map_err(|e| OAuthProblem::new("invalid_request", e.to_string()))?;
    let credentials = client_auth::read(headers, &form).map_err(refused_client)?;
    Ok((form, credentials))
}

/// A client-authenticated request admitted: the client's address, the
/// form and its credentials.
async fn admit_client_form(
    visit: &Visit,
    body: &[u8],
) -> Result<(IpAddr, Params, Credentials), Response> {
    // The general bucket, not the strict one of password logins: what these
    // endpoints take (client secrets, codes, tokens) are 256-bit random
    // strings that no rate of guesses finds, while a relying party or a
    // resource server calls them for all its users from one address.
    let client = visit.admit(RateClass::General).await.map_err(too_many)?;
    let (form, credentials) = client_form(&visit.headers, body)?;
    Ok((client, form, credentials))
}

/// A form parameter the request must carry.
fn required<'a>(form: &'a Params, name: &str) -> Result<&'a str, OAuthProblem> {
    form.get(name)
        .ok_or_else(|| OAuthProblem::new("invalid_request", format!("{name} is missing")))
}

/// An OAuthService answer that is the endpoint's result or the OAuth error
/// the auth service answered with (its `oneof result`).
pub(super) trait Outcome {
    type Done;
    /// The result or the error; `Err` (what it is called in the log) for
    /// an answer with neither.
    fn outcome(self) -> Result<Result<Self::Done, OAuthError>, &'static str>;
}

/// [`Outcome`] for answers whose `oneof result` is `$done` or `Error`.
macro_rules! outcome {
    ($($answer:ident: $result:ident::$done:ident($done_type:ty), $empty:literal;)*) => {$(
        impl Outcome for $answer {
            type Done = $done_type;
            fn outcome(self) -> Result<Result<$done_type, OAuthError>, &'static str> {
                Ok(match self.result.ok_or($empty)? {
                    $result::Result::$done(done) => Ok(done),
                    $result::Result::Error(e) => Err(e),
                })
            }
        }
    )*};
}

outcome! {
    TokenResponse: token_response::Tokens(Tokens), "an empty token answer";
    DeviceAuthorizeResponse: device_authorize_response::Authorization(DeviceAuthorization),
        "an empty device authorization answer";
    IntrospectResponse: introspect_response::Introspection(Introspection),
        "an empty introspection answer";
    UserInfoResponse: user_info_response::Claims(UserInfoClaims), "an empty userinfo answer";
    RegisterClientResponse: register_client_response::Client(RegisteredClient),
        "an empty registration answer";
}

/// A revocation's answer is an error or nothing (RFC 7009 §2.2: whether or
/// not the token was known).
impl Outcome for RevokeResponse {
    type Done = ();
    fn outcome(self) -> Result<Result<(), OAuthError>, &'static str> {
        Ok(self.error.map_or(Ok(()), Err))
    }
}

/// The outcome of the auth service's answer to `call`; a failed call, or
/// an answer with neither result nor error (its fault, an internal error),
/// is the API's problem.
pub(super) async fn outcome_of<A: Outcome>(
    call: impl Future<Output = Result<tonic::Response<A>, tonic::Status>>,
) -> Result<Result<A::Done, OAuthError>, Response> {
    let answer = call.await.map_err(|status| failed(&status))?.into_inner();
    answer
        .outcome()
        .map_err(|empty| failed(&tonic::Status::internal(empty)))
}

/// The auth service's client, as the endpoints' calls take it.
type AuthClient = OAuthServiceClient<TracedChannel>;

/// A client-authenticated endpoint (token, device authorization,
/// introspection, revocation): the form admitted with the client's
/// credentials, the auth service's `call` with the request `request` makes
/// of them, and `done`'s answer for its result, or the OAuth error it
/// answered with (the Basic challenge after Basic credentials).
async fn client_endpoint<Req, A: Outcome>(
    visit: Visit,
    body: Bytes,
    request: impl FnOnce(&Params, ClientAuthentication) -> Result<Req, OAuthProblem>,
    call: impl AsyncFnOnce(AuthClient, tonic::Request<Req>) -> Result<tonic::Response<A>, tonic::Status>,
    done: impl FnOnce(A::Done) -> Response,
) -> Response {
    respond(async {
        let (client, form, credentials) = admit_client_form(&visit, &body).await?;
        let request = request(&form, credentials.client)?;
        let oidc = &visit.oidc;
        let call = call(oidc.client(), oidc.request(request, client));
        Ok(match outcome_of(call).await? {
            Ok(result) => done(result),
            Err(e) => OAuthProblem::from_answer(e, credentials.basic).into_response(),
        })
    })
    .await
}

/// `GET /.well-known/openid-configuration`.
pub async fn discovery(visit: Visit) -> Response {
    let client = match visit.admit(RateClass::General).await {
        Ok(c) => c,
        Err(wait) => return too_many(wait),
    };
    let oidc = &visit.oidc;
    let document = oidc
        .discovery
        .get_or_try_init(|| async {
            let config = oidc
                .client()
                .get_provider_configuration(
                    oidc.request(GetProviderConfigurationRequest {}, client),
                )
                .await?
                .into_inner();
            Ok::<_, tonic::Status>(bytes::Bytes::from(discovery_document(&config).to_string()))
        })
        .await;
    match document {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                // Fixed until the auth service is redeployed; an hour of caching
                // spares relying parties the round trip.
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            body.clone(),
        )
            .into_response(),
        Err(status) => failed(&status),
    }
}

/// The discovery document for the provider's configuration: its own
/// fields plus the endpoints the gateway serves under the issuer.
pub fn discovery_document(c: &suite_proto::auth::GetProviderConfigurationResponse) -> Value {
    let issuer = c.issuer.trim_end_matches('/');
    let at = |path: &str| format!("{issuer}{path}");
    let mut document = json!({
        "issuer": c.issuer,
        "authorization_endpoint": at(AUTHORIZE_PATH),
        "token_endpoint": at(TOKEN_PATH),
        "userinfo_endpoint": at(USERINFO_PATH),
        "jwks_uri": at(JWKS_PATH),
        "introspection_endpoint": at(INTROSPECT_PATH),
        "revocation_endpoint": at(REVOKE_PATH),
        "end_session_endpoint": at(LOGOUT_PATH),
        "device_authorization_endpoint": at(DEVICE_AUTHORIZATION_PATH),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "scopes_supported": c.scopes_supported,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": c.grant_types_supported,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": c.id_token_signing_alg_values_supported,
        "token_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported":
            ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": c.claims_supported,
        // `acr_values=mfa` asks for a second factor; the ID token's `acr`
        // says which was met.
        "acr_values_supported": ["pwd", "mfa"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    });
    // Named only where anyone may register (RFC 8414 §2).
    if c.registration_enabled
        && let Value::Object(fields) = &mut document
    {
        fields.insert("registration_endpoint".into(), at(REGISTER_PATH).into());
    }
    document
}

/// `POST /oauth2/token`.
pub async fn token(visit: Visit, body: Bytes) -> Response {
    let request = |form: &Params, client| {
        Ok(TokenRequest {
            client: Some(client),
            grant_type: required(form, "grant_type")?.to_owned(),
            code: form.text("code"),
            redirect_uri: form.text("redirect_uri"),
            code_verifier: form.text("code_verifier"),
            refresh_token: form.text("refresh_token"),
            scope: form.text("scope"),
            device_code: form.text("device_code"),
        })
    };
    let call = async |mut auth: AuthClient, r| auth.token(r).await;
    client_endpoint(visit, body, request, call, |t| {
        let mut body = Map::new();
        body.insert("access_token".into(), t.access_token.into());
        body.insert(
            "token_type".into(),
            if t.token_type.is_empty() {
                "Bearer".to_owned()
            } else {
                t.token_type
            }
            .into(),
        );
        body.insert("expires_in".into(), t.expires_in.into());
        for (name, value) in [
            ("refresh_token", t.refresh_token),
            ("id_token", t.id_token),
            ("scope", t.scope),
        ] {
            if !value.is_empty() {
                body.insert(name.into(), value.into());
            }
        }
        no_store_json(StatusCode::OK, &Value::Object(body))
    })
    .await
}

/// `POST /oauth2/device_authorization` (RFC 8628 §3.1): the device's
/// codes, in §3.2's JSON. The general bucket, as the token endpoint's: the
/// client's credentials are 256-bit secrets (or a public client's id),
/// nothing to guess.
pub async fn device_authorization(visit: Visit, body: Bytes) -> Response {
    let request = |form: &Params, client| {
        Ok(DeviceAuthorizeRequest {
            client: Some(client),
            scope: form.text("scope"),
        })
    };
    let call = async |mut auth: AuthClient, r| auth.device_authorize(r).await;
    client_endpoint(visit, body, request, call, |d| {
        no_store_json(
            StatusCode::OK,
            &json!({
                "device_code": d.device_code,
                "user_code": d.user_code,
                "verification_uri": d.verification_uri,
                "verification_uri_complete": d.verification_uri_complete,
                "expires_in": d.expires_in,
                "interval": d.interval,
            }),
        )
    })
    .await
}

/// The token and its type hint: what introspection and revocation take.
fn token_and_hint(form: &Params) -> Result<(String, String), OAuthProblem> {
    Ok((
        required(form, "token")?.to_owned(),
        form.text("token_type_hint"),
    ))
}

/// `POST /oauth2/introspect` (RFC 7662).
pub async fn introspect(visit: Visit, body: Bytes) -> Response {
    let request = |form: &Params, client| {
        let (token, token_type_hint) = token_and_hint(form)?;
        Ok(IntrospectRequest {
            client: Some(client),
            token,
            token_type_hint,
        })
    };
    let call = async |mut auth: AuthClient, r| auth.introspect(r).await;
    client_endpoint(visit, body, request, call, |i| {
        no_store_json(StatusCode::OK, &introspection_json(i))
    })
    .await
}

/// RFC 7662 §2.2: an inactive token says nothing else; an active one its
/// non-empty members.
pub fn introspection_json(i: suite_proto::auth::Introspection) -> Value {
    if !i.active {
        return json!({ "active": false });
    }
    let mut body = Map::new();
    body.insert("active".into(), true.into());
    for (name, value) in [
        ("scope", i.scope),
        ("client_id", i.client_id),
        ("username", i.username),
        ("token_type", i.token_type),
        ("sub", i.sub),
        ("iss", i.iss),
        ("jti", i.jti),
        ("sid", i.sid),
    ] {
        if !value.is_empty() {
            body.insert(name.into(), value.into());
        }
    }
    for (name, value) in [("exp", i.exp), ("iat", i.iat)] {
        if value > 0 {
            body.insert(name.into(), value.into());
        }
    }
    match i.aud.len() {
        0 => {}
        1 => {
            body.insert("aud".into(), i.aud[0].clone().into());
        }
        _ => {
            body.insert("aud".into(), i.aud.into());
        }
    }
    Value::Object(body)
}

/// `POST /oauth2/revoke` (RFC 7009).
pub async fn revoke(visit: Visit, body: Bytes) -> Response {
    let request = |form: &Params, client| {
        let (token, token_type_hint) = token_and_hint(form)?;
        Ok(RevokeRequest {
            client: Some(client),
            token,
            token_type_hint,
        })
    };
    let call = async |mut auth: AuthClient, r| auth.revoke(r).await;
    // RFC 7009 §2.2: 200 whether or not the token was known.
    client_endpoint(visit, body, request, call, |()| {
        (
            StatusCode::OK,
            [
                (header::CACHE_CONTROL, "no-store"),
                (header::PRAGMA, "no-cache"),
            ],
        )
            .into_response()
    })
    .await
}

/// `GET /oauth2/userinfo`: the bearer token in `Authorization`.
pub async fn userinfo_get(visit: Visit) -> Response {
    let token = bearer(&visit.headers);
    userinfo(&visit, token).await
}

/// `POST /oauth2/userinfo`: the token in `Authorization`, or in the form's
/// `access_token` (RFC 6750 §2.2), not both.
pub async fn userinfo_post(visit: Visit, body: Bytes) -> Response {
    let header_token = bearer(&visit.headers);
    let form_token = if body.is_empty() {
        Ok(None)
    } else {
        Params::from_body(&visit.headers, &body).map(|f| f.get("access_token").map(str::to_owned))
    };
    let token = match (header_token, form_token) {
        (Bearer::Token(_) | Bearer::Malformed, Ok(Some(_))) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the token was sent twice",
            );
        }
        (Bearer::Absent, Ok(Some(t))) => Bearer::Token(t),
        (_, Err(e)) => {
            return bearer_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string());
        }
        (h, Ok(None)) => h,
    };
    userinfo(&visit, token).await
}

/// The bearer token of a request.
pub enum Bearer {
    Absent,
    Malformed,
    Token(String),
}

/// The `Authorization: Bearer` token, if any.
pub fn bearer(headers: &HeaderMap) -> Bearer {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Bearer::Absent;
    };
    match value.to_str().ok().and_then(|v| v.split_once(' ')) {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Bearer::Token(token.trim().to_owned())
        }
        _ => Bearer::Malformed,
    }
}

/// An RFC 6750 §3 error: the challenge says why (quotes and backslashes
/// are left out of the description: it must stay a quoted-string).
pub fn bearer_error(status: StatusCode, error: &str, description: &str) -> Response {
    let description: String = description
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
        .collect();
    let challenge = format!("Bearer error=\"{error}\", error_description=\"{description}\"");
    let mut response = no_store_json(
        status,
        &json!({ "error": error, "error_description": description }),
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

async fn userinfo(visit: &Visit, token: Bearer) -> Response {
    respond(async {
        let client = visit.admit(RateClass::General).await.map_err(too_many)?;
        let token = match token {
            // RFC 6750 §3.1: no credentials, no error code.
            Bearer::Absent => {
                let mut r = no_store_json(
                    StatusCode::UNAUTHORIZED,
                    &json!({ "error": "invalid_token", "error_description": "no access token" }),
                );
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return Err(r);
            }
            Bearer::Malformed => {
                return Err(bearer_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "the Authorization header is not a bearer token",
                ));
            }
            Bearer::Token(t) => t,
        };
        let request = UserInfoRequest {
            access_token: token,
        };
        let oidc = &visit.oidc;
        let result = outcome_of(oidc.client().user_info(oidc.request(request, client))).await?;
        Ok(match result {
            Ok(c) => {
                let mut body = Map::new();
                body.insert("sub".into(), c.sub.into());
                if let Some(v) = c.name {
                    body.insert("name".into(), v.into());
                }
                if let Some(v) = c.preferred_username {
                    body.insert("preferred_username".into(), v.into());
                }
                if let Some(v) = c.updated_at {
                    body.insert("updated_at".into(), v.into());
                }
                if let Some(v) = c.email {
                    body.insert("email".into(), v.into());
                }
                if let Some(v) = c.email_verified {
                    body.insert("email_verified".into(), v.into());
                }
                no_store_json(StatusCode::OK, &Value::Object(body))
            }
            Err(e) => {
                let status = match e.error.as_str() {
                    "insufficient_scope" => StatusCode::FORBIDDEN,
                    "invalid_request" => StatusCode::BAD_REQUEST,
                    _ => StatusCode::UNAUTHORIZED,
                };
                bearer_error(status, &e.error, &e.error_description)
            }
        })
    })
    .await
}
