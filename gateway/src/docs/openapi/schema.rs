//! The JSON Schemas of the contract's messages and fields, per the proto3
//! JSON mapping, with the value rules of `(suite.api.v1.field)`.

use super::{
    Generator,
    comments::{comment, field_comment},
};
use prost_reflect::{
    EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value as PValue,
};
use serde_json::{Map, Value, json};

impl Generator<'_> {
    pub(super) fn reference(&mut self, message: &MessageDescriptor) -> Value {
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
    pub(super) fn drain(&mut self) {
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

    pub(super) fn message_schema(
        &mut self,
        message: &MessageDescriptor,
        excluded: &[&str],
    ) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for field in message.fields() {
            if excluded.contains(&field.name()) {
                continue;
            }
            let behaviors = crate::contract::routes::field_behaviors(&field);
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
                // "" is unset for a string or an enum, never for a message
                // whose JSON form is a string (a Duration, a Timestamp):
                // that is refused as malformed.
                if !matches!(field.kind(), prost_reflect::Kind::Message(_)) {
                    allow_empty(&mut schema);
                }
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

    pub(super) fn field_schema(&mut self, field: &FieldDescriptor) -> Value {
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
    pub(super) fn field_by_name(&self, name: &str) -> Option<FieldDescriptor> {
        let (message, field) = name.rsplit_once('.')?;
        self.pool
            .get_message_by_name(message)?
            .get_field_by_name(field)
    }

    pub(super) fn scalar_schema(&self, field: &FieldDescriptor) -> Value {
        let mut schema = Self::scalar_type(field);
        self.apply_rules(field, &mut schema);
        schema
    }

    /// A field's `suite.api.v1.field` rules, as JSON Schema keywords.
    pub(super) fn apply_rules(&self, field: &FieldDescriptor, schema: &mut Value) {
        self.apply_rules_within(field, schema, 0);
    }

    /// [`Self::apply_rules`], following `same_as` up to a few fields deep
    /// (a longer chain, a loop or an unknown name is a bug that a test of
    /// the document shows as missing rules).
    pub(super) fn apply_rules_within(
        &self,
        field: &FieldDescriptor,
        schema: &mut Value,
        depth: usize,
    ) {
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

    pub(super) fn scalar_type(field: &FieldDescriptor) -> Value {
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
pub(super) fn non_empty(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    if map.get("type") == Some(&json!("string")) && !map.contains_key("minLength") {
        map.insert("minLength".into(), 1.into());
    }
}

/// In proto3 an empty string is an unset field, which an optional field may
/// be whatever its rules say about a set value.
pub(super) fn allow_empty(schema: &mut Value) {
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
pub(super) fn nullable(schema: Value) -> Value {
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

pub(super) fn enum_schema(e: &EnumDescriptor) -> Value {
    let names: Vec<String> = e.values().map(|v| v.name().to_owned()).collect();
    json!({ "type": "string", "enum": names })
}

/// The JSON forms of the well-known types, per the proto3 JSON mapping.
pub(super) fn well_known(full_name: &str) -> Option<Value> {
    Some(match full_name {
        "google.protobuf.Timestamp" => json!({ "type": "string", "format": "date-time" }),
        // At most 11 digits of seconds: the JSON mapping's range is
        // ±315,576,000,000 s, and a longer number is refused.
        "google.protobuf.Duration" => {
            json!({ "type": "string", "pattern": "^-?[0-9]{1,11}(\\.[0-9]{1,9})?s$" })
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
