//! The answers of an operation: its success (JSON, or an event stream) and
//! the problem-details responses every error shares.

use super::{Generator, comments::comment};
use crate::contract::routes::{RequestBody, ResponseBody, Route};
use serde_json::{Map, Value, json};
use suite_proto::access::MethodAccess;

/// The problem-details schema every error response uses.
pub(super) const PROBLEM: &str = "Problem";

impl Generator<'_> {
    pub(super) fn responses(&mut self, route: &Route, access: MethodAccess) -> Map<String, Value> {
        let mut responses = Map::new();
        let mut headers = Map::new();
        headers.insert(
            "X-Request-Id".into(),
            json!({ "$ref": "#/components/headers/X-Request-Id" }),
        );
        let output = route.method.output();
        let mut success = json!({
            "description": comment(output.parent_file(), output.path()),
        });
        if route.success == http::StatusCode::CREATED && route.location_field.is_some() {
            headers.insert(
                "Location".into(),
                json!({
                    "description": "The created resource's URL path.",
                    "schema": { "type": "string" },
                }),
            );
        }
        if route.method.is_server_streaming() {
            success = self.event_stream(route);
        } else if route.success != http::StatusCode::NO_CONTENT {
            let schema = self.sent_schema(route);
            success["content"] = json!({ "application/json": { "schema": schema } });
        }
        success["headers"] = headers.into();
        responses.insert(route.success.as_u16().to_string(), success);

        let mut errors = vec!["400", "404", "429", "500", "503", "504"];
        if !route.public {
            errors.extend(["401", "403"]);
        }
        if route.http_method != http::Method::GET {
            errors.push("409");
        }
        if !matches!(route.body, RequestBody::None) {
            errors.extend(["413", "415"]);
        }
        errors.sort_unstable();
        for code in errors {
            responses.insert(
                code.into(),
                json!({ "$ref": format!("#/components/responses/{}", error_name(code)) }),
            );
        }
        if let MethodAccess::Scope(scope) = access {
            // The shared Forbidden, naming the scope this operation needs.
            // Inline rather than a `$ref` with its own description, which
            // some generators read as a response without content.
            responses.insert(
                "403".into(),
                problem_response(
                    &format!(
                        "The caller may not do this: e.g. an OAuth or personal access token \
                         without the `{scope}` scope (the problem's `detail` names it, and \
                         `WWW-Authenticate` is `Bearer error=\"insufficient_scope\", \
                         scope=\"{scope}\"`)."
                    ),
                    www_authenticate_forbidden(),
                ),
            );
        }
        responses.insert(
            "default".into(),
            json!({ "$ref": "#/components/responses/Error" }),
        );
        responses
    }

    /// The schema of what a success sends: the whole response, or its
    /// `response_body` field.
    pub(super) fn sent_schema(&mut self, route: &Route) -> Value {
        match &route.response_body {
            ResponseBody::Whole => self.reference(&route.method.output()),
            ResponseBody::Field(field) => self.field_schema(field),
        }
    }

    /// The success of a server-streaming route: Server-Sent Events, framed
    /// as the `sse` module says, each `data` the JSON of the message (its
    /// schema in `x-event-data`, as OpenAPI 3.1 has no schema for items).
    pub(super) fn event_stream(&mut self, route: &Route) -> Value {
        let output = route.method.output();
        let data = self.sent_schema(route);
        let about = comment(output.parent_file(), output.path());
        let framing = format!(
            "A stream of Server-Sent Events (`text/event-stream`), one per `{}`: `id` is its \
             `id` (send it back as `Last-Event-ID` to resume after it), `event` its `type`, \
             `data` its JSON on one line (the schema in `x-event-data`). A `: keep-alive` \
             comment breaks any silence (after 15 s by default). The stream ends when the access token \
             expires or the stream breaks off, with a last `event: error` whose `data` is a \
             problem (`Problem`, e.g. status 401 `access token expired`); errors before the \
             first event are ordinary problem answers. After a plain end (the gateway \
             restarting, say) the client resumes with `Last-Event-ID`.",
            route.sent_message().full_name()
        );
        json!({
            "description": if about.is_empty() { framing } else { format!("{about}\n\n{framing}") },
            "content": { "text/event-stream": {
                "schema": { "type": "string" },
                "x-event-data": data,
            }},
        })
    }
}

pub(super) fn error_name(code: &str) -> &'static str {
    match code {
        "400" => "BadRequest",
        "401" => "Unauthorized",
        "403" => "Forbidden",
        "404" => "NotFound",
        "409" => "Conflict",
        "413" => "ContentTooLarge",
        "415" => "UnsupportedMediaType",
        "429" => "TooManyRequests",
        "500" => "InternalError",
        "503" => "ServiceUnavailable",
        "504" => "GatewayTimeout",
        _ => "Error",
    }
}

pub(super) fn problem_response(description: &str, extra_headers: Value) -> Value {
    let mut headers = json!({ "X-Request-Id": { "$ref": "#/components/headers/X-Request-Id" } });
    if let (Some(all), Value::Object(extra)) = (headers.as_object_mut(), extra_headers) {
        all.extend(extra);
    }
    json!({
        "description": description,
        "headers": headers,
        "content": {
            "application/problem+json": {
                "schema": { "$ref": format!("#/components/schemas/{PROBLEM}") },
            },
        },
    })
}

/// The challenge of a token whose grant does not reach the operation.
fn www_authenticate_forbidden() -> Value {
    json!({ "WWW-Authenticate": {
        "description": "When the token's grant is short: `Bearer error=\"insufficient_scope\"`, \
            with `scope=\"…\"` naming the scope needed if there is one (RFC 6750).",
        "schema": { "type": "string" },
    }})
}

pub(super) fn error_responses() -> Value {
    let none = Value::Null;
    json!({
        "BadRequest": problem_response(
            "Invalid input: the body, a path variable or a query parameter (`errors` names \
             each bad field), or a failed precondition.",
            none.clone(),
        ),
        "Unauthorized": problem_response(
            "No valid access token.",
            json!({ "WWW-Authenticate": {
                "description": "`Bearer`, with the error when a token was sent.",
                "schema": { "type": "string" },
            }}),
        ),
        "Forbidden": problem_response(
            "The caller may not do this: its roles do not allow it, or its token's grant does \
             not reach the operation (an OAuth or personal access token without the scope \
             needed, or at all on a first-party-only operation).",
            www_authenticate_forbidden(),
        ),
        "NotFound": problem_response("No such resource (or route).", none.clone()),
        "Conflict": problem_response(
            "Already exists, or the `etag` sent no longer matches.",
            none.clone(),
        ),
        "ContentTooLarge": problem_response("The body is over the size limit.", none.clone()),
        "UnsupportedMediaType": problem_response(
            "A body that is not `application/json`.",
            none.clone(),
        ),
        "TooManyRequests": problem_response(
            "Over the rate limit (per client, stricter on register, login, refresh and \
             logout), or a login locked after failures.",
            json!({
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": { "type": "integer", "minimum": 0 },
                },
                "RateLimit-Policy": {
                    "description": "The limit that was hit (IETF RateLimit fields draft).",
                    "schema": { "type": "string" },
                },
            }),
        ),
        "InternalError": problem_response("An internal error (details are logged, never sent).", none.clone()),
        "ServiceUnavailable": problem_response("A service is down or not ready; try again shortly.", none.clone()),
        "GatewayTimeout": problem_response("The request's time budget was spent.", none.clone()),
        "Error": problem_response("Any other error, as problem details.", none),
    })
}

pub(super) fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": { "type": "string" },
            "title": { "type": "string" },
            "status": { "type": "integer", "minimum": 400, "maximum": 599 },
            "detail": { "type": "string" },
            "requestId": { "type": "string", "description": "The request's `X-Request-Id`." },
            "errors": {
                "type": "array",
                "description": "One entry per invalid field.",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": { "type": "string", "description": "The field's JSON path, e.g. `user.displayName`." },
                        "message": { "type": "string" },
                    },
                    "required": ["field", "message"],
                },
            },
        },
        "required": ["type", "title", "status"],
    })
}
