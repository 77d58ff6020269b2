//! The HTTP side: every request is looked up in the route table, transcoded
//! to its RPC, forwarded with an allowlist of headers as metadata and the
//! request budget as `grpc-timeout`, and answered as JSON or a problem.

use crate::{
    problem::Problem,
    routes::{NoRoute, RouteTable},
    transcode,
};
use axum::{
    extract::{ConnectInfo, Request, State},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use prost::Message;
use std::{collections::HashMap, net::SocketAddr, str::FromStr, sync::Arc, time::Duration};
use suite_grpc::balance::Balanced;

/// Request headers passed on to the services as gRPC metadata.
const FORWARDED_HEADERS: &[&str] = &[
    "authorization",
    "x-request-id",
    "traceparent",
    "tracestate",
    "baggage",
    "accept-language",
];

/// Response metadata passed back to clients as headers (from successes and
/// errors alike); everything else a service sends stays inside.
const RETURNED_METADATA: &[&str] = &[
    "content-language",
    "retry-after",
    // RFC 9745 and RFC 8594: a service announcing a method's retirement.
    "deprecation",
    "sunset",
    "link",
];

/// The allowlisted entries of a reply's metadata, as response headers.
fn returned_headers(md: &tonic::metadata::MetadataMap) -> Vec<(header::HeaderName, HeaderValue)> {
    RETURNED_METADATA
        .iter()
        .filter_map(|name| {
            let value = md.get(*name)?.to_str().ok()?;
            Some((
                header::HeaderName::from_static(name),
                HeaderValue::from_str(value).ok()?,
            ))
        })
        .collect()
}

pub struct Gateway {
    pub routes: RouteTable,
    /// Verifies access tokens before anything is forwarded.
    pub auth: suite_tokens::Verifier,
    pub limits: Arc<crate::limits::Limits>,
    /// The channel to each service (balanced over its replicas), by its full name.
    pub upstreams: HashMap<String, Balanced>,
    /// Client spans and trace propagation for each service's calls.
    pub traces: HashMap<String, suite_telemetry::grpc_client::TraceClientLayer>,
    pub budget: Duration,
    pub max_body_bytes: usize,
}

pub type Shared = Arc<Gateway>;

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string())
}

/// The fallback handler that serves every route of the table.
pub async fn transcode(
    State(gw): State<Shared>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let id = request_id(req.headers());
    let mut response = match handle(&gw, peer, req, &id).await {
        Ok(r) => r,
        Err(mut problem) => {
            problem.request_id = id.clone();
            problem.into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

async fn handle(
    gw: &Gateway,
    peer: SocketAddr,
    req: Request,
    id: &str,
) -> Result<Response, Problem> {
    let (mut parts, body) = req.into_parts();
    let found = match parts.extensions.remove::<crate::observe::Matched>() {
        Some(crate::observe::Matched(found)) => found,
        None => gw.routes.find_index(&parts.method, parts.uri.path()),
    };
    let (route, vars) = found
        .and_then(|(i, vars)| gw.routes.get(i).map(|r| (r, vars)).ok_or(NoRoute::NotFound))
        .map_err(|e| match e {
            NoRoute::NotFound => Problem::new(StatusCode::NOT_FOUND, "no such route"),
            NoRoute::MethodNotAllowed(allowed) => {
                let allow = allowed
                    .iter()
                    .map(http::Method::as_str)
                    .collect::<Vec<_>>()
                    .join(", ");
                let p = Problem::new(StatusCode::METHOD_NOT_ALLOWED, format!("allowed: {allow}"));
                match HeaderValue::from_str(&allow) {
                    Ok(v) => p.with_header(header::ALLOW, v),
                    Err(_) => p,
                }
            }
        })?;
    let client = gw.limits.client(peer, &parts.headers);
    let sensitive = route.public && route.http_method == http::Method::POST;
    if let Err(wait) = gw.limits.check(client, sensitive) {
        return Err(too_many(gw, sensitive, wait));
    }
    if !route.public {
        authenticate(gw, &parts.headers).await?;
    }
    let body = axum::body::to_bytes(body, gw.max_body_bytes)
        .await
        .map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {} bytes", gw.max_body_bytes),
            )
        })?;
    if !body.is_empty() && !is_json(&parts.headers) {
        return Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send JSON: Content-Type: application/json",
        ));
    }
    let message = transcode::request(route, &vars, parts.uri.query(), &body)?;

    let service = route.method.parent_service();
    let upstream = gw
        .upstreams
        .get(service.full_name())
        .ok_or_else(|| Problem::new(StatusCode::NOT_IMPLEMENTED, "no upstream for this route"))?;
    let mut grpc_req = tonic::Request::new(Bytes::from(message.encode_to_vec()));
    for name in FORWARDED_HEADERS {
        if let Some(v) = parts.headers.get(*name).and_then(|v| v.to_str().ok())
            && let Ok(v) = tonic::metadata::MetadataValue::try_from(v)
        {
            grpc_req.metadata_mut().insert(*name, v);
        }
    }
    if let Ok(mut v) = tonic::metadata::MetadataValue::try_from(id) {
        // New on every request: kept out of HPACK's table, where it would
        // only push out the headers that repeat.
        v.set_sensitive(true);
        grpc_req.metadata_mut().insert("x-request-id", v);
    }
    if let Ok(v) = tonic::metadata::MetadataValue::try_from(client.to_string()) {
        grpc_req.metadata_mut().insert("x-forwarded-for", v);
    }
    grpc_req.set_timeout(gw.budget);
    let path = http::uri::PathAndQuery::from_str(&format!(
        "/{}/{}",
        service.full_name(),
        route.method.name()
    ))
    .map_err(|_| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "bad method path"))?;

    let started = std::time::Instant::now();
    let idempotent = route.http_method == http::Method::GET;
    let trace = gw
        .traces
        .get(service.full_name())
        .ok_or_else(|| Problem::new(StatusCode::NOT_IMPLEMENTED, "no upstream for this route"))?;
    let reply = crate::retry::unary(
        upstream,
        trace,
        grpc_req,
        path,
        idempotent,
        started + gw.budget,
    );
    let reply = match tokio::time::timeout(gw.budget, reply).await {
        // tonic servers answer a spent `grpc-timeout` with Cancelled; that
        // is the budget running out, not the client going away.
        Ok(Err(s))
            if s.code() == tonic::Code::Cancelled
                && started.elapsed() >= gw.budget.mul_f32(0.9) =>
        {
            Err(tonic::Status::deadline_exceeded("budget spent"))
        }
        Ok(r) => r,
        Err(_) => Err(tonic::Status::deadline_exceeded("budget spent")),
    };
    let reply = reply.map_err(|s| {
        tracing::info!(code = ?s.code(), route = route.template.as_str(), "upstream error: {}", s.message());
        returned_headers(s.metadata())
            .into_iter()
            .fold(Problem::from_status(&s), |p, (name, value)| {
                p.with_header(name, value)
            })
    })?;
    let json = transcode::response(route, reply.get_ref()).map_err(|e| {
        tracing::error!(error = %e, "undecodable upstream reply");
        Problem::new(StatusCode::BAD_GATEWAY, "bad reply from a service")
    })?;
    let returned = returned_headers(reply.metadata());
    if route.success == StatusCode::NO_CONTENT {
        let mut response = StatusCode::NO_CONTENT.into_response();
        response.headers_mut().extend(returned);
        return Ok(response);
    }
    let mut response = (route.success, json.to_string()).into_response();
    let headers = response.headers_mut();
    headers.extend(returned);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Public keys are meant to be cached (everything else is no-store).
    if parts.uri.path().starts_with("/.well-known/") {
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
    }
    if route.success == StatusCode::CREATED
        && let Some(id) = location_id(route, &json)
        && let Ok(location) = HeaderValue::from_str(&format!(
            "{}/{}",
            parts.uri.path().trim_end_matches('/'),
            id
        ))
    {
        headers.insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The created resource's id: the `location_field` of what was sent back.
fn location_id<'a>(route: &crate::routes::Route, json: &'a serde_json::Value) -> Option<&'a str> {
    if route.location_field.is_empty() {
        return None;
    }
    let output = route.method.output();
    let sent = if route.response_body.is_empty() {
        output
    } else {
        match output.get_field_by_name(&route.response_body)?.kind() {
            prost_reflect::Kind::Message(m) => m,
            _ => return None,
        }
    };
    let field = sent.get_field_by_name(&route.location_field)?;
    json.get(field.json_name())?.as_str()
}

/// 429 with `Retry-After` (whole seconds, rounded up) and the policy broken.
fn too_many(gw: &Gateway, sensitive: bool, wait: Duration) -> Problem {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let (limit, window) = if sensitive {
        gw.limits.sensitive_policy
    } else {
        gw.limits.general_policy
    };
    let name = if sensitive { "auth" } else { "default" };
    let mut p = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many requests; try again in {secs} s"),
    );
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        p = p.with_header(header::RETRY_AFTER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{name}\";q={limit};w={window}")) {
        p = p.with_header(http::HeaderName::from_static("ratelimit-policy"), v);
    }
    p
}

/// A missing or invalid access token on a protected route: 401 here, before
/// any service is bothered.
async fn authenticate(gw: &Gateway, headers: &HeaderMap) -> Result<(), Problem> {
    use suite_tokens::{TokenError, verifier::bearer_token};
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Problem::unauthenticated(
            "this call needs a bearer access token",
        ));
    };
    let token =
        value.to_str().ok().and_then(bearer_token).ok_or_else(|| {
            Problem::unauthenticated("authorization must be `Bearer <access token>`")
        })?;
    match gw.auth.caller(token).await {
        Ok(_) => Ok(()),
        Err(e) => {
            tracing::debug!(error = %e, "token refused");
            Err(Problem::unauthenticated(match e {
                TokenError::Expired => "access token expired",
                TokenError::Invalid(_) | TokenError::Rejected(_) => "invalid access token",
            }))
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
}

/// Ready when every upstream reports SERVING on the gRPC health protocol.
pub async fn ready(State(gw): State<Shared>) -> Response {
    let mut not_ready = Vec::new();
    for (name, channel) in &gw.upstreams {
        let serving =
            suite_grpc::health::check_health(channel.channel(), name, Duration::from_secs(1)).await;
        if !matches!(serving, Ok(true)) {
            not_ready.push(name.as_str());
        }
    }
    if not_ready.is_empty() {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({ "status": "ready" })),
        )
            .into_response()
    } else {
        not_ready.sort_unstable();
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}", not_ready.join(", ")),
        )
        .into_response()
    }
}
