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

use crate::routes::{Route, RouteTable};
use prost_reflect::{
    DescriptorPool, EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    Value as PValue,
};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The problem-details schema every error response uses.
const PROBLEM: &str = "Problem";

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
                RFC 9457 problem details. Send the `accessToken` from login as \
                `Authorization: Bearer <token>`.",
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
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "An access token from `POST /api/v1/auth/login` or \
                        `POST /api/v1/auth/refresh` (EdDSA-signed JWT, verified against \
                        `/.well-known/jwks.json`).",
                },
            },
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
        let description = if crate::transcode::implied_mask_field(route).is_some() {
            format!(
                "{description}\n\nThe fields `updateMask` names (every one with `*`) or, without \
                 it, the fields the body names (the gateway implies the mask from the body's \
                 keys) are set to the body's values: an absent, `\"\"` or `null` value clears the \
                 field, which a field that must have a value refuses."
            )
        } else {
            description
        };
        op.insert("description".into(), description.into());
        if route.public {
            op.insert("security".into(), json!([]));
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
        if route.body != "*" {
            let mut query = Vec::new();
            self.query_parameters(&input, "", &bound, &route.body, 0, &mut query);
            parameters.extend(query);
        }
        if method.is_server_streaming()
            && let Some(field) = crate::sse::resume_field(&input)
        {
            parameters.push(json!({
                "name": "Last-Event-ID",
                "in": "header",
                "description": format!(
                    "Sent by an EventSource on reconnecting: the `id` of the last event \
                     received. Sets `{}` (and wins over the query parameter).",
                    field.json_name()
                ),
                "schema": self.scalar_schema(&field),
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
        op.insert("responses".into(), self.responses(route).into());
        op
    }

    fn request_body_schema(&mut self, route: &Route, bound: &[String]) -> Option<Value> {
        let input = route.method.input();
        match route.body.as_str() {
            "" => None,
            "*" => {
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
            field => {
                let f = input.get_field_by_name(field)?;
                Some(self.field_schema(&f))
            }
        }
    }

    fn responses(&mut self, route: &Route) -> Map<String, Value> {
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
        if route.success == http::StatusCode::CREATED && !route.location_field.is_empty() {
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
            let schema = if route.response_body.is_empty() {
                self.reference(&output)
            } else {
                match output.get_field_by_name(&route.response_body) {
                    Some(f) => self.field_schema(&f),
                    None => json!({}),
                }
            };
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
        if !route.body.is_empty() {
            errors.extend(["413", "415"]);
        }
        errors.sort_unstable();
        for code in errors {
            responses.insert(
                code.into(),
                json!({ "$ref": format!("#/components/responses/{}", error_name(code)) }),
            );
        }
        responses.insert(
            "default".into(),
            json!({ "$ref": "#/components/responses/Error" }),
        );
        responses
    }

    /// The success of a server-streaming route: Server-Sent Events, framed
    /// as the `sse` module says, each `data` the JSON of the message (its
    /// schema in `x-event-data`, as OpenAPI 3.1 has no schema for items).
    fn event_stream(&mut self, route: &Route) -> Value {
        let output = route.method.output();
        let data = if route.response_body.is_empty() {
            self.reference(&output)
        } else {
            match output.get_field_by_name(&route.response_body) {
                Some(f) => self.field_schema(&f),
                None => json!({}),
            }
        };
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
            sent_name(&output, &route.response_body)
        );
        json!({
            "description": if about.is_empty() { framing } else { format!("{about}\n\n{framing}") },
            "content": { "text/event-stream": {
                "schema": { "type": "string" },
                "x-event-data": data,
            }},
        })
    }

    /// The fields a query string may set: scalars, repeated scalars and
    /// FieldMasks outside the path and the body, nested messages by dotted
    /// JSON names (as the gateway reads them).
    fn query_parameters(
        &mut self,
        message: &MessageDescriptor,
        prefix: &str,
        bound: &[String],
        body: &str,
        depth: usize,
        out: &mut Vec<Value>,
    ) {
        for field in message.fields() {
            let proto_path = if prefix.is_empty() {
                field.name().to_owned()
            } else {
                format!("{prefix}.{}", field.name())
            };
            if bound.contains(&proto_path) || (prefix.is_empty() && field.name() == body) {
                continue;
            }
            let name = crate::problem::json_field_path(&proto_path);
            match field.kind() {
                Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask" => {
                    let mut schema = self.field_schema(&field);
                    allow_empty(&mut schema);
                    out.push(json!({
                        "name": name,
                        "in": "query",
                        "description": field_comment(&field),
                        "schema": schema,
                    }));
                }
                Kind::Message(m) if !field.is_list() && !field.is_map() && depth < 3 => {
                    self.query_parameters(&m, &proto_path, bound, body, depth + 1, out);
                }
                Kind::Message(_) | Kind::Bytes => {}
                _ => {
                    let mut schema = self.field_schema(&field);
                    allow_empty(&mut schema);
                    out.push(json!({
                        "name": name,
                        "in": "query",
                        "description": field_comment(&field),
                        "schema": schema,
                        "explode": true,
                    }));
                }
            }
        }
    }

    fn reference(&mut self, message: &MessageDescriptor) -> Value {
        if let Some(schema) = well_known(message.full_name()) {
            return schema;
        }
        if !self.schemas.contains_key(message.full_name())
            && !self
                .pending
                .iter()
                .any(|m| m.full_name() == message.full_name())
        {
            self.pending.push(message.clone());
        }
        json!({ "$ref": format!("#/components/schemas/{}", message.full_name()) })
    }

    /// Describes every referenced message (which may reference more).
    fn drain(&mut self) {
        while let Some(message) = self.pending.pop() {
            if self.schemas.contains_key(message.full_name()) {
                continue;
            }
            // A placeholder first, so a self-referencing message terminates.
            self.schemas
                .insert(message.full_name().to_owned(), Value::Null);
            let schema = self.message_schema(&message, &[]);
            self.schemas.insert(message.full_name().to_owned(), schema);
        }
    }

    fn message_schema(&mut self, message: &MessageDescriptor, excluded: &[&str]) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            if excluded.contains(&field.name()) {
                continue;
            }
            let behaviors = crate::routes::field_behaviors(&field);
            let mut schema = self.field_schema(&field);
            let description = field_comment(&field);
            if let Some(map) = schema.as_object_mut() {
                if !description.is_empty() {
                    map.insert("description".into(), description.into());
                }
                if behaviors.iter().any(|b| b == "OUTPUT_ONLY") {
                    map.insert("readOnly".into(), true.into());
                }
                if behaviors.iter().any(|b| b == "INPUT_ONLY") {
                    map.insert("writeOnly".into(), true.into());
                }
            }
            // Required: present, not `null` and, for a string, not empty
            // (proto3 reads both as unset, which the services refuse).
            // Optional: `null` and "" are the default, which the gateway
            // accepts for any field.
            if behaviors.iter().any(|b| b == "REQUIRED") {
                required.push(Value::from(field.json_name()));
                non_empty(&mut schema);
                properties.insert(field.json_name().to_owned(), schema);
            } else {
                allow_empty(&mut schema);
                properties.insert(field.json_name().to_owned(), nullable(schema));
            }
        }
        let mut schema = json!({
            "type": "object",
            "description": comment(message.parent_file(), message.path()),
            "properties": properties,
            "additionalProperties": false,
        });
        if !required.is_empty() {
            schema["required"] = required.into();
        }
        schema
    }

    fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
        if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                return json!({ "type": "object" });
            };
            let value = entry.map_entry_value_field();
            return json!({
                "type": "object",
                "additionalProperties": self.field_schema(&value),
            });
        }
        let item = match field.kind() {
            Kind::Message(m) => {
                let mut schema = self.reference(&m);
                // A well-known type's JSON is a scalar, which rules may narrow.
                if well_known(m.full_name()).is_some() {
                    self.apply_rules(field, &mut schema);
                }
                schema
            }
            _ => self.scalar_schema(field),
        };
        if field.is_list() {
            json!({ "type": "array", "items": item })
        } else {
            item
        }
    }

    /// A field by its full name, `package.Message.field`.
    fn field_by_name(&self, name: &str) -> Option<FieldDescriptor> {
        let (message, field) = name.rsplit_once('.')?;
        self.pool
            .get_message_by_name(message)?
            .get_field_by_name(field)
    }

    fn scalar_schema(&self, field: &FieldDescriptor) -> Value {
        let mut schema = Self::scalar_type(field);
        self.apply_rules(field, &mut schema);
        schema
    }

    /// A field's `suite.api.v1.field` rules, as JSON Schema keywords.
    fn apply_rules(&self, field: &FieldDescriptor, schema: &mut Value) {
        self.apply_rules_within(field, schema, 0);
    }

    /// [`Self::apply_rules`], following `same_as` up to a few fields deep
    /// (a longer chain, a loop or an unknown name is a bug that a test of
    /// the document shows as missing rules).
    fn apply_rules_within(&self, field: &FieldDescriptor, schema: &mut Value, depth: usize) {
        let Some(ext) = self.pool.get_extension_by_name("suite.api.v1.field") else {
            return;
        };
        let options = field.options();
        if !options.has_extension(&ext) {
            return;
        }
        let PValue::Message(rules) = options.get_extension(&ext).into_owned() else {
            return;
        };
        if let Some(other) = rules
            .get_field_by_name("same_as")
            .and_then(|v| v.as_str().map(str::to_owned))
            .filter(|name| !name.is_empty() && depth < 4)
            .and_then(|name| self.field_by_name(&name))
        {
            self.apply_rules_within(&other, schema, depth + 1);
        }
        let Some(map) = schema.as_object_mut() else {
            return;
        };
        for (name, keyword) in [
            ("pattern", "pattern"),
            ("format", "format"),
            ("min_length", "minLength"),
            ("max_length", "maxLength"),
            ("minimum", "minimum"),
            ("maximum", "maximum"),
        ] {
            let Some(field) = rules.descriptor().get_field_by_name(name) else {
                continue;
            };
            if !rules.has_field(&field) {
                continue;
            }
            let value = match rules.get_field(&field).into_owned() {
                PValue::String(s) => Value::from(s),
                PValue::U32(n) => Value::from(n),
                PValue::I64(n) => Value::from(n),
                _ => continue,
            };
            map.insert(keyword.into(), value);
        }
        let values: Vec<Value> = rules
            .get_field_by_name("enum")
            .and_then(|v| match v.into_owned() {
                PValue::List(values) => Some(values),
                _ => None,
            })
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.as_str().map(Value::from))
            .collect();
        if !values.is_empty() {
            map.insert("enum".into(), values.into());
        }
        // What a schema cannot check, said in extensions (and in the
        // descriptions): see `FieldRules` in suite/api/v1/annotations.proto.
        if let Some(PValue::U32(score)) = rules
            .get_field_by_name("zxcvbn_min_score")
            .map(|v| v.into_owned())
            .filter(|v| *v != PValue::U32(0))
        {
            map.insert("x-zxcvbn-min-score".into(), score.into());
        }
        if rules
            .get_field_by_name("visible_text")
            .is_some_and(|v| v.as_bool() == Some(true))
        {
            map.insert("x-visible-text".into(), true.into());
        }
    }

    fn scalar_type(field: &FieldDescriptor) -> Value {
        match field.kind() {
            Kind::String => json!({ "type": "string" }),
            Kind::Bool => json!({ "type": "boolean" }),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => json!({
                "type": "integer", "format": "int32",
                "minimum": i32::MIN, "maximum": i32::MAX,
            }),
            Kind::Uint32 | Kind::Fixed32 => json!({
                "type": "integer", "format": "int64", "minimum": 0, "maximum": u32::MAX,
            }),
            // The proto3 JSON mapping writes 64-bit integers as strings.
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({
                "type": "string", "format": "int64", "pattern": "^-?[0-9]{1,19}$",
            }),
            Kind::Uint64 | Kind::Fixed64 => json!({
                "type": "string", "format": "uint64", "pattern": "^[0-9]{1,20}$",
            }),
            Kind::Float => json!({ "type": "number", "format": "float" }),
            Kind::Double => json!({ "type": "number", "format": "double" }),
            Kind::Bytes => json!({ "type": "string", "contentEncoding": "base64" }),
            Kind::Enum(e) => enum_schema(&e),
            Kind::Message(m) => well_known(m.full_name()).unwrap_or_else(|| json!({})),
        }
    }
}

/// A required string: proto3 reads "" as unset, so at least one character.
fn non_empty(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if map.get("type") == Some(&json!("string")) && !map.contains_key("minLength") {
        map.insert("minLength".into(), 1.into());
    }
}

/// In proto3 an empty string is an unset field, which an optional field may
/// be whatever its rules say about a set value.
fn allow_empty(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if map.get("type") != Some(&json!("string")) {
        return;
    }
    let mut rules = Map::new();
    for key in ["pattern", "format", "minLength"] {
        if let Some(v) = map.remove(key) {
            rules.insert(key.into(), v);
        }
    }
    if !rules.is_empty() {
        // Each alternative names its type, so that generators read a typed
        // union (a date-time stays a date-time) rather than "any".
        rules.insert("type".into(), "string".into());
        map.insert(
            "anyOf".into(),
            json!([{ "type": "string", "maxLength": 0 }, Value::Object(rules)]),
        );
    }
}

/// The proto3 JSON mapping reads `null` as "the default value" for every
/// field, and the gateway accepts it; the gateway never sends it.
fn nullable(schema: Value) -> Value {
    let Value::Object(mut map) = schema else {
        return schema;
    };
    match map.remove("type") {
        Some(Value::String(_)) if map.contains_key("anyOf") => {
            // Alternatives that each name their type (`allow_empty`'s): null
            // is one more.
            if let Some(Value::Array(alternatives)) = map.get_mut("anyOf") {
                alternatives.push(json!({ "type": "null" }));
            }
            Value::Object(map)
        }
        Some(Value::String(t)) => {
            map.insert("type".into(), json!([t, "null"]));
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.push(Value::Null);
            }
            Value::Object(map)
        }
        Some(other) => {
            map.insert("type".into(), other);
            Value::Object(map)
        }
        None => {
            // `$ref` (and annotations beside it): null or the referenced schema.
            let mut outer = Map::new();
            for key in ["description", "readOnly", "writeOnly"] {
                if let Some(v) = map.remove(key) {
                    outer.insert(key.into(), v);
                }
            }
            if map.is_empty() {
                return Value::Object(outer);
            }
            outer.insert(
                "anyOf".into(),
                json!([Value::Object(map), { "type": "null" }]),
            );
            Value::Object(outer)
        }
    }
}

fn enum_schema(e: &EnumDescriptor) -> Value {
    let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
    json!({ "type": "string", "enum": names })
}

/// The JSON forms of the well-known types, per the proto3 JSON mapping.
fn well_known(full_name: &str) -> Option<Value> {
    Some(match full_name {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        "google.protobuf.Duration" => {
            json!({ "type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$" })
        }
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Comma-separated field names (lowerCamelCase).",
        }),
        "google.protobuf.Empty" => json!({ "type": "object", "additionalProperties": false }),
        "google.protobuf.Struct" => json!({ "type": "object" }),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({ "type": "array" }),
        "google.protobuf.StringValue" => json!({ "type": "string" }),
        "google.protobuf.BoolValue" => json!({ "type": "boolean" }),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            json!({ "type": "integer" })
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({ "type": "string", "pattern": "^-?[0-9]+$" })
        }
        "google.protobuf.FloatValue" | "google.protobuf.DoubleValue" => {
            json!({ "type": "number" })
        }
        "google.protobuf.BytesValue" => json!({ "type": "string", "contentEncoding": "base64" }),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": { "@type": { "type": "string" } },
            "required": ["@type"],
        }),
        _ => return None,
    })
}

/// A path variable's parameter name: its last field's JSON name (`user.id` →
/// `id`), so templates of the same shape name their parameters alike, as
/// OpenAPI requires; the whole path (`user_id`) if that is ambiguous.
fn parameter_name(variables: &[String], variable: &str) -> String {
    let last = |v: &str| v.rsplit('.').next().unwrap_or(v).to_owned();
    let short = last(variable);
    if variables.iter().filter(|v| last(v) == short).count() > 1 {
        crate::problem::json_field_path(&variable.replace('.', "_"))
    } else {
        crate::problem::json_field_path(&short)
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

fn field_comment(field: &FieldDescriptor) -> String {
    comment(field.parent_file(), field.path())
}

/// The leading comment of the element at `path` in `file`, as one paragraph
/// per blank-line-separated block.
fn comment(file: prost_reflect::FileDescriptor, path: &[i32]) -> String {
    file.file_descriptor_proto()
        .source_code_info
        .as_ref()
        .and_then(|info| info.location.iter().find(|l| l.path == path))
        .and_then(|l| l.leading_comments.as_deref())
        .map(|text| {
            text.split("\n\n")
                .map(|para| {
                    para.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("\n\n")
        })
        .unwrap_or_default()
}

fn error_name(code: &str) -> &'static str {
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

fn problem_response(description: &str, extra_headers: Value) -> Value {
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

fn error_responses() -> Value {
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
        "Forbidden": problem_response("The caller may not do this.", none.clone()),
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

fn problem_schema() -> Value {
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
            "/api/health",
            op(
                "Gateway_Health",
                "Liveness: the gateway process answers",
                json!({ "200": status_ok("Alive.", "ok") }),
            ),
        ),
        (
            "/api/openapi.json",
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

/// The full name of what a route sends: its `response_body` field's message,
/// or the whole reply.
fn sent_name(output: &prost_reflect::MessageDescriptor, response_body: &str) -> String {
    match output.get_field_by_name(response_body).map(|f| f.kind()) {
        Some(prost_reflect::Kind::Message(m)) => m.full_name().to_owned(),
        _ => output.full_name().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        let pool = DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let routes = RouteTable::from_pool(&pool, &[crate::USER_SERVICE, crate::AUTH_SERVICE])
            .expect("routes");
        document(&routes, &pool)
    }

    fn schema<'a>(doc: &'a Value, name: &str) -> &'a Value {
        &doc["components"]["schemas"][name]
    }

    #[test]
    fn required_fields_are_listed_and_neither_null_nor_empty() {
        let doc = doc();
        let login = schema(&doc, "suite.auth.v1.LoginRequest");
        assert_eq!(login["required"], json!(["login", "password"]));
        assert_eq!(login["properties"]["login"]["type"], "string");
        assert_eq!(login["properties"]["login"]["minLength"], 1);
        assert_eq!(login["properties"]["password"]["minLength"], 1);
        assert_eq!(login["properties"]["password"]["writeOnly"], true);
        // Optional: null and "" mean unset, as the gateway reads them.
        assert_eq!(
            login["properties"]["userAgent"]["type"],
            json!(["string", "null"])
        );
        let create = schema(&doc, "suite.user.v1.CreateUserRequest");
        assert_eq!(create["properties"]["username"]["type"], "string");
        let refresh = schema(&doc, "suite.auth.v1.RefreshRequest");
        assert_eq!(refresh["properties"]["refreshToken"]["minLength"], 1);
        // The inline body of ChangePassword (its `id` is in the path).
        let change = &doc["paths"]["/api/v1/users/{id}:changePassword"]["post"]["requestBody"];
        assert_eq!(change["required"], true);
        let body = &change["content"]["application/json"]["schema"];
        assert_eq!(body["required"], json!(["newPassword"]));
        assert_eq!(body["properties"]["newPassword"]["minLength"], 8);
        assert!(body["properties"].get("id").is_none(), "{body}");
        let user = schema(&doc, "suite.user.v1.User");
        assert_eq!(user["properties"]["createTime"]["readOnly"], true);
        // An optional field with rules: "", a value by the rules, or null,
        // each alternative typed (generators then keep the format).
        assert_eq!(
            user["properties"]["createTime"]["anyOf"],
            json!([
                { "type": "string", "maxLength": 0 },
                { "type": "string", "format": "date-time" },
                { "type": "null" }
            ])
        );
        assert!(user["properties"]["createTime"].get("type").is_none());
    }

    #[test]
    fn roles_masks_and_what_a_schema_cannot_check_are_described() {
        let doc = doc();
        for name in ["suite.user.v1.User", "suite.user.v1.CreateUserRequest"] {
            let roles = &schema(&doc, name)["properties"]["roles"];
            assert_eq!(roles["items"]["enum"], json!(["user", "admin"]), "{name}");
            let display = &schema(&doc, name)["properties"]["displayName"];
            assert_eq!(display["x-visible-text"], true, "{name}");
            assert_eq!(display["maxLength"], 64, "{name}");
        }
        let create = schema(&doc, "suite.user.v1.CreateUserRequest");
        assert_eq!(create["properties"]["password"]["x-zxcvbn-min-score"], 3);
        let update = &doc["paths"]["/api/v1/users/{id}"]["patch"];
        let mask = update["parameters"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "updateMask"))
            .expect("updateMask");
        let pattern = mask["schema"]["anyOf"][1]["pattern"]
            .as_str()
            .expect("a mask pattern");
        assert!(pattern.contains("displayName"), "{pattern}");
        let list = &doc["paths"]["/api/v1/users"]["get"]["parameters"];
        let token = list
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "pageToken"))
            .expect("pageToken");
        assert!(
            token["description"]
                .as_str()
                .is_some_and(|d| d.contains("opaque")),
            "{token}"
        );
    }

    /// The document's numbers are the services' own: a change on one side
    /// only fails here.
    #[test]
    fn the_published_rules_are_the_ones_the_services_enforce() {
        use suite_user::domain::{self, DisplayName, NewPassword, Username};
        let doc = doc();
        let create = &schema(&doc, "suite.user.v1.CreateUserRequest")["properties"];
        let password = &create["password"];
        assert_eq!(password["minLength"], domain::MIN_PASSWORD_CHARS);
        assert_eq!(password["maxLength"], domain::MAX_PASSWORD_CHARS);
        assert_eq!(
            password["x-zxcvbn-min-score"],
            suite_user::Config::defaults().password_min_score
        );
        let min = domain::MIN_PASSWORD_CHARS;
        let max = domain::MAX_PASSWORD_CHARS;
        let password = |raw: String| NewPassword::parse(suite_proto::Password::parse(raw).ok());
        assert!(password("x".repeat(min)).is_ok());
        assert!(password("x".repeat(min - 1)).is_err());
        assert!(password("x".repeat(max)).is_ok());
        assert!(password("x".repeat(max + 1)).is_err());
        assert_eq!(
            create["roles"]["items"]["enum"],
            json!(domain::ASSIGNABLE_ROLES)
        );
        let display_max = create["displayName"]["maxLength"].as_u64().expect("max") as usize;
        assert!(DisplayName::parse(&"é".repeat(display_max)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(display_max + 1)).is_err());
        assert!(DisplayName::parse("a\u{7}b").is_err());
        assert!(DisplayName::parse("a\u{202e}b").is_err());
        assert_eq!(
            create["username"]["pattern"], "^[A-Za-z0-9_.-]{3,32}$",
            "the samples below follow this pattern"
        );
        for ok in ["abc", "ABC", "a_b.c-D", &"Z".repeat(32)] {
            assert!(Username::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["ab", "a b", " abc", "ab!", "\u{212A}ate", &"z".repeat(33)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
        let login = &schema(&doc, "suite.auth.v1.LoginRequest")["properties"]["login"];
        assert_eq!(login["maxLength"], suite_proto::MAX_LOGIN_CHARS);
        let email = &create["email"];
        assert_eq!(email["maxLength"], 254);
        assert!(domain::Email::parse(&format!("{}@example.com", "a".repeat(64))).is_ok());
    }

    #[test]
    fn a_streaming_operation_is_an_event_stream_of_its_message() {
        let doc = doc();
        let op = &doc["paths"]["/api/v1/users/me/events"]["get"];
        let ok = &op["responses"]["200"];
        let media = &ok["content"]["text/event-stream"];
        assert_eq!(media["schema"], json!({ "type": "string" }));
        assert_eq!(
            media["x-event-data"],
            json!({ "$ref": "#/components/schemas/suite.user.v1.Event" })
        );
        assert!(ok["content"].get("application/json").is_none(), "{ok}");
        assert!(
            doc["components"]["schemas"]["suite.user.v1.Event"]["properties"]["id"].is_object()
        );
        let description = ok["description"].as_str().expect("description");
        assert!(description.contains("Last-Event-ID"), "{description}");
        assert!(description.contains("event: error"), "{description}");
        let parameters = op["parameters"].as_array().expect("parameters");
        let header = parameters
            .iter()
            .find(|p| p["in"] == "header")
            .expect("a header parameter");
        assert_eq!(header["name"], "Last-Event-ID");
        assert_eq!(header["schema"]["format"], "uuid");
        assert!(parameters.iter().any(|p| p["name"] == "lastEventId"));
        for code in ["401", "403", "503"] {
            assert!(op["responses"].get(code).is_some(), "{code}");
        }
        // The admins' stream too; a unary operation stays JSON.
        assert!(
            doc["paths"]["/api/v1/events"]["get"]["responses"]["200"]["content"]
                .get("text/event-stream")
                .is_some()
        );
        let unary = &doc["paths"]["/api/v1/users/{id}"]["get"]["responses"]["200"]["content"];
        assert!(unary.get("application/json").is_some(), "{unary}");
    }
}
