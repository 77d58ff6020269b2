//! The handler under the layers: transcodes the request of the matched
//! endpoint, calls its RPC, and answers with the JSON (or the problem), or
//! with Server-Sent Events for a server-streaming RPC (`sse`).

use crate::{
    contract::{
        endpoints::{Endpoint, Matched},
        routes::Route,
        transcode,
    },
    http::{body::ReadBody, problem::Problem},
    policy::rate_limit::Client,
    state::SharedState,
    upstream::{call, sse},
};
use axum::{
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use prost::Message;
use std::time::Instant;
use suite_grpc::retry::Retry;

/// The fallback handler that serves every route of the table.
pub async fn forward(
    State(gw): State<SharedState>,
    matched: Matched,
    req: Request,
) -> Result<Response, Problem> {
    let (endpoint, vars) = matched.found()?;
    let route = &endpoint.route;
    let (parts, _) = req.into_parts();
    // Read whole, and bounded, by the body layer, which every matched route
    // passes.
    let Some(ReadBody(body)) = parts.extensions.get::<ReadBody>() else {
        return Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no request body",
        ));
    };
    let mut message = transcode::request(route, vars, parts.uri.query(), body)?;
    let streams = route.method.is_server_streaming();
    if streams {
        sse::resume(route, &mut message, &parts.headers)?;
    }
    let Some(Client(client)) = parts.extensions.get::<Client>().copied() else {
        return Err(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "no client address",
        ));
    };
    let mut metadata = call::metadata(&parts.headers, crate::http::request_id::current(), client);
    if let Some(secret) = &gw.forwarding_secret {
        suite_grpc::forwarded::prove(&mut metadata, secret);
    }
    // GET is safe to repeat (the HTTP semantics the routes follow).
    let retry = if route.http_method == http::Method::GET {
        Retry::ReadOnly
    } else {
        Retry::Never
    };
    let message = Bytes::from(message.encode_to_vec());
    if streams {
        // The stream outlives this handler: it holds the endpoint itself.
        let owned = matched.owned_endpoint().ok_or_else(|| {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "no matched endpoint")
        })?;
        return sse::serve(&gw, owned, &parts, metadata, message, retry).await;
    }
    let reply = call::unary(
        endpoint,
        metadata,
        message,
        retry,
        Instant::now() + gw.budget,
    )
    .await
    .map_err(|s| call::problem(route, &s))?;
    answer(endpoint, parts.uri.path(), &reply)
}

/// The response for a successful reply.
fn answer(
    endpoint: &Endpoint,
    path: &str,
    reply: &tonic::Response<Bytes>,
) -> Result<Response, Problem> {
    let route = &endpoint.route;
    let json = transcode::response(route, reply.get_ref()).map_err(|e| {
        tracing::error!(error = %e, "undecodable upstream reply");
        Problem::new(StatusCode::BAD_GATEWAY, "bad reply from a service")
    })?;
    let returned = call::returned_headers(reply.metadata());
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
    // Only what the contract marks cacheable (everything else is no-store).
    if let Some(cache_control) = &endpoint.cache_control {
        headers.insert(header::CACHE_CONTROL, cache_control.clone());
    }
    if route.success == StatusCode::CREATED
        && let Some(id) = location_id(route, &json)
        && let Ok(location) =
            HeaderValue::from_str(&format!("{}/{}", path.trim_end_matches('/'), id))
    {
        headers.insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The created resource's id: the `location_field` of what was sent back.
fn location_id<'a>(route: &Route, json: &'a serde_json::Value) -> Option<&'a str> {
    let path = route.location_field.as_ref()?;
    path.iter()
        .try_fold(json, |value, field| value.get(field.json_name()))?
        .as_str()
}
