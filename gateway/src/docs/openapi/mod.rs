//! The OpenAPI 3.1 document of the REST surface, generated from the same
//! route table and descriptors the gateway serves from, so the two cannot
//! drift apart. Descriptions are the protos' own comments.
//!
//! Schemas follow the proto3 JSON mapping the gateway speaks: lowerCamelCase
//! names, 64-bit integers as strings, Timestamp as RFC 3339, FieldMask as a
//! comma-separated string, enums by name. Unknown fields are rejected, so
//! every message schema says `additionalProperties: false`. Fields are never
//! `required` in responses (proto3 JSON leaves out default values); in
//! requests, fields marked `(google.api.field_behavior) = REQUIRED` are, and
//! are neither `null` nor empty. `OUTPUT_ONLY` is `readOnly`, `INPUT_ONLY`
//! `writeOnly`; the value rules are the protos' `(suite.api.v1.field)`.
//!
//! Each operation's `security` is the access rule the gateway checks for its
//! method (the protos' `(suite.api.v1.access)`): the scope an OAuth or
//! personal access token needs, or first-party tokens only.

mod comments;
mod responses;
mod schema;
#[cfg(test)]
mod tests;

use crate::contract::{
    names::json_field_path,
    routes::{RequestBody, Route, RouteTable},
};
use comments::{comment, field_comment};
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use responses::{PROBLEM, error_responses, problem_schema};
use schema::allow_empty;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use suite_proto::access::{MethodAccess, method_access, method_path};

/// Builds the document for every route in `routes`.
pub fn document(routes: &RouteTable, pool: &DescriptorPool) -> Value {
    let mut generator = Generator {
        pool,
        schemas: BTreeMap::new(),
        pending: Vec::new(),
    };
    let mut paths: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    let mut tags = BTreeMap::new();
    let mut operation_ids = BTreeSet::new();
    for route in routes.routes() {
        let service = route.method.parent_service();
        tags.entry(service.name().to_owned())
            .or_insert_with(|| comment(service.parent_file(), service.path()));
        let mut id = format!("{}_{}", service.name(), route.method.name());
        let mut n = 1;
        while !operation_ids.insert(id.clone()) {
            id = format!("{}_{}_{n}", service.name(), route.method.name());
            n += 1;
        }
        let op = generator.operation(route, id);
        paths
            .entry(openapi_path(route))
            .or_default()
            .insert(route.http_method.as_str().to_ascii_lowercase(), op.into());
    }
    tags.insert(
        "Gateway".to_owned(),
        "The gateway's own routes: health, readiness and this document.".to_owned(),
    );
    for (path, ops) in gateway_paths() {
        paths.insert(path.to_owned(), ops);
    }
    generator.drain();

    let mut schemas: Map<String, Value> = generator.schemas.into_iter().collect();
    schemas.insert(PROBLEM.to_owned(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Users and authentication suite",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The public REST/JSON API of the suite. Every operation is a gRPC \
                method of the user or auth service, transcoded by the gateway. Errors are \
                RFC 9457 problem details. Send an access token as \
                `Authorization: Bearer <token>`: the `accessToken` from login, an OAuth access \
                token or a personal access token. Each operation names the scope an OAuth or \
                personal access token needs for it (`security`, `x-required-scope`).",
            "license": { "name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0" },
        },
        "servers": [{ "url": "/" }],
        "tags": tags
            .into_iter()
            .map(|(name, description)| json!({ "name": name, "description": description }))
            .collect::<Vec<_>>(),
        "security": [{ "bearerAuth": [] }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": error_responses(),
            "headers": {
                "X-Request-Id": {
                    "description": "The request's id: the client's `X-Request-Id` if it sent a \
                        sane one, else a new UUID. Also in problem details as `requestId`.",
                    "schema": { "type": "string" },
                },
            },
            "securitySchemes": security_schemes(),
        },
    })
}

struct Generator<'a> {
    pool: &'a DescriptorPool,
    /// Component schemas by message full name.
    schemas: BTreeMap<String, Value>,
    /// Messages referenced but not yet described.
    pending: Vec<MessageDescriptor>,
}

impl Generator<'_> {
    fn operation(&mut self, route: &Route, operation_id: String) -> Map<String, Value> {
        let method = &route.method;
        let input = method.input();
        let bound = route.template.variables();
        let mut op = Map::new();
        op.insert("operationId".into(), operation_id.into());
        op.insert(
            "tags".into(),
            json!([method.parent_service().name().to_owned()]),
        );
        let description = comment(method.parent_file(), method.path());
        if let Some(summary) = description.split(". ").next().filter(|s| !s.is_empty()) {
            op.insert("summary".into(), summary.trim_end_matches('.').into());
        }
        let description = if route.implied_mask.is_some() {
            format!(
                "{description}\n\nThe fields `updateMask` names (every one with `*`) or, without \
                 it, the fields the body names (the gateway implies the mask from the body's \
                 keys) are set to the body's values: an absent, `\"\"` or `null` value clears the \
                 field, which a field that must have a value refuses."
            )
        } else {
            description
        };
        let access = access(route);
        let description = match access_note(access) {
            Some(note) => format!("{description}\n\n{note}"),
            None => description,
        };
        op.insert("description".into(), description.into());
        op.insert("security".into(), security(access));
        if let MethodAccess::Scope(scope) = access {
            op.insert("x-required-scope".into(), scope.into());
        }

        let mut parameters = Vec::new();
        for path in &bound {
            let field = field_at(&input, path);
            let mut schema = field
                .as_ref()
                .map(|f| self.scalar_schema(f))
                .unwrap_or_else(|| json!({ "type": "string" }));
            if let Some(map) = schema.as_object_mut() {
                map.remove("readOnly");
            }
            parameters.push(json!({
                "name": parameter_name(&bound, path),
                "in": "path",
                "required": true,
                "description": field.map(|f| field_comment(&f)).unwrap_or_default(),
                "schema": schema,
            }));
        }
        if !matches!(route.body, RequestBody::Whole) {
            let body = route.body.field().map(FieldDescriptor::name);
            let mut query = Vec::new();
            self.query_parameters(&input, "", &bound, body, 0, &mut query);
            parameters.extend(query);
        }
        if let Some(field) = &route.resume_field {
            parameters.push(json!({
                "name": "Last-Event-ID",
                "in": "header",
                "description": format!(
                    "Sent by an EventSource on reconnecting: the `id` of the last event \
                     received. Sets `{}` (and wins over the query parameter).",
                    field.json_name()
                ),
                "schema": self.scalar_schema(field),
            }));
        }
        if !parameters.is_empty() {
            op.insert("parameters".into(), parameters.into());
        }

        if let Some(schema) = self.request_body_schema(route, &bound) {
            op.insert(
                "requestBody".into(),
                // Every body the contract takes holds a required field.
                json!({
                    "required": true,
                    "content": { "application/json": { "schema": schema } },
                }),
            );
        }
        op.insert("responses".into(), self.responses(route, access).into());
        op
    }

    fn request_body_schema(&mut self, route: &Route, bound: &[String]) -> Option<Value> {
        let input = route.method.input();
        match &route.body {
            RequestBody::None => None,
            RequestBody::Whole => {
                // The path's fields come from the path, not the body.
                let excluded: Vec<&str> = bound
                    .iter()
                    .filter(|b| !b.contains('.'))
                    .map(String::as_str)
                    .collect();
                if excluded.is_empty() {
                    Some(self.reference(&input))
                } else {
                    Some(self.message_schema(&input, &excluded))
                }
            }
            RequestBody::Field(field, _) => Some(self.field_schema(field)),
        }
    }
    /// The fields a query string may set: scalars, repeated scalars and
    /// FieldMasks outside the path and the body, nested messages by dotted
    /// JSON names (as the gateway reads them).
    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        prefix: &str,
        bound: &[String],
        body: Option<&str>,
        depth: usize,
        out: &mut Vec<Value>,
    ) {
        for field in message.fields() {
            let proto_path = if prefix.is_empty() {
                field.name().to_owned()
            } else {
                format!("{prefix}.{}", field.name())
            };
            if bound.contains(&proto_path) || (prefix.is_empty() && Some(field.name()) == body) {
                continue;
            }
            match field.kind() {
                Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask" => {
                    // One comma-separated value, not one per path.
                    out.push(self.query_parameter(&field, &proto_path));
                }
                Kind::Message(m) if !field.is_list() && !field.is_map() && depth < 3 => {
                    self.query_parameters(&m, &proto_path, bound, body, depth + 1, out);
                }
                Kind::Message(_) | Kind::Bytes => {}
                _ => {
                    // A repeated field takes the parameter once per value.
                    let mut parameter = self.query_parameter(&field, &proto_path);
                    parameter["explode"] = true.into();
                    out.push(parameter);
                }
            }
        }
    }

    /// The query parameter that sets `field` (at `proto_path`).
    fn query_parameter(&mut self, field: &FieldDescriptor, proto_path: &str) -> Value {
        let mut schema = self.field_schema(field);
        allow_empty(&mut schema);
        json!({
            "name": json_field_path(proto_path),
            "in": "query",
            "description": field_comment(field),
            "schema": schema,
        })
    }
}

/// The API scopes an OAuth or personal access token may carry, in the
/// consent page's words (the auth service's `describe_scope`), then the
/// OIDC ones: what a client asks for at the authorization endpoint.
const SCOPES: &[(&str, &str)] = &[
    ("user:read", "Read your profile, sessions and events"),
    (
        "user:write",
        "Change your profile and password, end your sessions, delete your account",
    ),
    ("admin", "Act as an administrator (only if you are one)"),
    ("openid", "Sign you in with your account"),
    ("profile", "See your name and username"),
    ("email", "See your email address"),
    ("offline_access", "Stay signed in when you are not using it"),
];

/// Who may call a route's method, as the gateway and the services check it
/// (the contract's `suite.api.v1.access`, public routes `Open`).
fn access(route: &Route) -> MethodAccess {
    let method = &route.method;
    method_access(&method_path(
        method.parent_service().full_name(),
        method.name(),
    ))
}

/// An operation's security requirements. A scoped method takes any bearer
/// token whose grant holds the scope (first-party tokens hold every one),
/// so the scope is named on `bearerAuth` too (OpenAPI 3.1 allows scopes on
/// any scheme) for the personal access tokens, which have no flow of their
/// own. The other methods take first-party tokens only.
fn security(access: MethodAccess) -> Value {
    match access {
        MethodAccess::Open => json!([]),
        MethodAccess::Scope(scope) => json!([{ "bearerAuth": [scope] }, { "oauth2": [scope] }]),
        MethodAccess::FirstParty => json!([{ "bearerAuth": [] }]),
    }
}

/// The sentence a reader of the docs page sees about the token an
/// operation takes (the `security` above, in words).
fn access_note(access: MethodAccess) -> Option<String> {
    match access {
        MethodAccess::Open => None,
        MethodAccess::Scope(scope) => Some(format!(
            "Needs the `{scope}` scope (OAuth and personal access tokens); a first-party \
             access token from login is not limited by scopes.{}",
            if scope == "admin" {
                " Whatever the token, the caller must also be an admin."
            } else {
                ""
            }
        )),
        MethodAccess::FirstParty => Some(
            "First-party access tokens only (from `POST /api/v1/auth/login`): OAuth access \
             tokens and personal access tokens are refused."
                .to_owned(),
        ),
    }
}

fn security_schemes() -> Value {
    let scopes: Map<String, Value> = SCOPES
        .iter()
        .map(|(scope, about)| ((*scope).to_owned(), (*about).into()))
        .collect();
    json!({
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "An access token, any of: a first-party one from \
                `POST /api/v1/auth/login` or `POST /api/v1/auth/refresh` (an EdDSA-signed JWT, \
                verified against `/.well-known/jwks.json`; limited only by the user's roles), \
                an OAuth access token (limited to its granted scopes), or a personal access \
                token `suitepat_…` from `POST /api/v1/auth/tokens` (not a JWT; limited to its \
                scopes).",
        },
        // Only the flows that end in a token acting for a user: every
        // method that needs a token acts for one, so a client credentials
        // token (the client acting for itself) is refused by all of them
        // and listing that flow would mislead. The device flow
        // (`/oauth2/device_authorization`) is no OpenAPI flow.
        "oauth2": {
            "type": "oauth2",
            "description": "OAuth 2.0 access tokens a user granted a client (also through the \
                device flow, `POST /oauth2/device_authorization`). A client's own token \
                (client credentials) acts for no user and is refused by every operation here.",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": "/oauth2/authorize",
                    "tokenUrl": "/oauth2/token",
                    "refreshUrl": "/oauth2/token",
                    "scopes": scopes,
                },
            },
        },
        "openIdConnect": {
            "type": "openIdConnect",
            "openIdConnectUrl": "/.well-known/openid-configuration",
            "description": "The same OAuth 2.0 server, by its discovery document.",
        },
    })
}

/// A path variable's parameter name: its last field's JSON name (`user.id` →
/// `id`), so templates of the same shape name their parameters alike, as
/// OpenAPI requires; the whole path (`user_id`) if that is ambiguous.
fn parameter_name(variables: &[String], variable: &str) -> String {
    let last = |v: &str| v.rsplit('.').next().unwrap_or(v).to_owned();
    let short = last(variable);
    if variables.iter().filter(|v| last(v) == short).count() > 1 {
        json_field_path(&variable.replace('.', "_"))
    } else {
        json_field_path(&short)
    }
}

fn openapi_path(route: &Route) -> String {
    let variables = route.template.variables();
    let mut path = route.template.openapi_path();
    for v in &variables {
        path = path.replace(
            &format!("{{{v}}}"),
            &format!("{{{}}}", parameter_name(&variables, v)),
        );
    }
    path
}

/// The field at a dotted proto path, e.g. `user.id`.
fn field_at(message: &MessageDescriptor, path: &str) -> Option<FieldDescriptor> {
    let mut current = message.clone();
    let mut parts = path.split('.').peekable();
    while let Some(part) = parts.next() {
        let field = current.get_field_by_name(part)?;
        if parts.peek().is_none() {
            return Some(field);
        }
        let Kind::Message(m) = field.kind() else {
            return None;
        };
        current = m;
    }
    None
}
/// The gateway's own routes, which no RPC backs.
fn gateway_paths() -> Vec<(&'static str, Map<String, Value>)> {
    let status_ok = |description: &str, status: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": {
                "type": "object",
                "properties": { "status": { "type": "string", "const": status } },
                "required": ["status"],
            }}},
        })
    };
    let op = |id: &str, summary: &str, responses: Value| {
        let mut m = Map::new();
        m.insert(
            "get".into(),
            json!({
                "operationId": id,
                "tags": ["Gateway"],
                "summary": summary,
                "security": [],
                "responses": responses,
            }),
        );
        m
    };
    vec![
        (
            crate::HEALTH_PATH,
            op(
                "Gateway_Health",
                "Liveness: the gateway process answers",
                json!({ "200": status_ok("Alive.", "ok") }),
            ),
        ),
        (
            crate::OPENAPI_PATH,
            op(
                "Gateway_OpenApi",
                "This document",
                json!({ "200": {
                    "description": "The OpenAPI 3.1 document.",
                    "content": { "application/json": { "schema": { "type": "object" } } },
                }}),
            ),
        ),
    ]
}
