//! Proto3 JSON ⇄ protobuf for one route: path variables, query parameters
//! and the body fill the request message; the response (or its
//! `response_body` field) becomes JSON. Dynamic messages from the contract
//! (prost-reflect) do the proto3 JSON mapping, not hand-written code.

use crate::{
    contract::{
        names::{json_field_path, proto_field_name},
        percent,
        routes::{RequestBody, ResponseBody, Route, field_behaviors},
    },
    http::problem::Problem,
};
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    SerializeOptions, Value,
};

/// The request message for `route` from the parts of an HTTP request.
pub fn request(
    route: &Route,
    vars: &[(String, String)],
    query: Option<&str>,
    body: &[u8],
) -> Result<DynamicMessage, Problem> {
    let input = route.method.input();
    let body_text = std::str::from_utf8(body)
        .map_err(|_| Problem::new(http::StatusCode::BAD_REQUEST, "the body is not UTF-8"))?;
    let has_body = !body_text.trim().is_empty();
    let body_text = if has_body { body_text } else { "{}" };
    let mut msg = match &route.body {
        RequestBody::None if has_body => {
            return Err(Problem::new(
                http::StatusCode::BAD_REQUEST,
                "this route takes no request body",
            ));
        }
        RequestBody::None => DynamicMessage::new(input),
        RequestBody::Whole => parse_json(&input, body_text)?,
        RequestBody::Field(field, body_type) => {
            // The body is the field's message and nothing else: decoded on
            // its own, it cannot reach the request's other fields.
            // (An empty body names no keys, and implies no mask.)
            let (inner, implied) = match &route.implied_mask {
                Some(mask_field) if has_body => {
                    let (inner, keys) = parse_json_with_keys(body_type, body_text)?;
                    (inner, Some((mask_field, keys)))
                }
                _ => (parse_json(body_type, body_text)?, None),
            };
            let mut msg = DynamicMessage::new(input);
            msg.set_field(field, Value::Message(inner));
            if let Some((mask_field, keys)) = implied {
                imply_update_mask(&mut msg, mask_field, body_type, &keys);
            }
            msg
        }
    };
    for (path, raw) in vars {
        set_path(&mut msg, path, raw, false)
            .map_err(|e| Problem::bad_field(&json_field_path(path), e))?;
    }
    if let Some(query) = query {
        apply_query(route, &mut msg, vars, query)?;
    }
    Ok(msg)
}

fn invalid_json(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        http::StatusCode::BAD_REQUEST,
        format!("invalid JSON body: {e}"),
    )
}

fn parse_json(desc: &MessageDescriptor, text: &str) -> Result<DynamicMessage, Problem> {
    let mut de = serde_json::Deserializer::from_str(text);
    DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &DeserializeOptions::new())
        .and_then(|m| de.end().map(|()| m))
        .map_err(invalid_json)
}

/// [`parse_json`] that also returns the object's top-level keys, from one
/// parse of the text: the keys say which fields a PATCH names, even those
/// it sets to their default value, which the message cannot tell apart from
/// the ones it leaves out.
fn parse_json_with_keys(
    desc: &MessageDescriptor,
    text: &str,
) -> Result<(DynamicMessage, Vec<String>), Problem> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(invalid_json)?;
    let keys = match &json {
        serde_json::Value::Object(object) => object.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let msg =
        DynamicMessage::deserialize_with_options(desc.clone(), json, &DeserializeOptions::new())
            .map_err(invalid_json)?;
    Ok((msg, keys))
}

/// PATCH with a body field and no explicit `update_mask`: the mask is the
/// body's top-level keys, so `{"displayName": ""}` clears the display name
/// instead of being ignored as a default value.
fn imply_update_mask(
    msg: &mut DynamicMessage,
    mask_field: &FieldDescriptor,
    body_type: &MessageDescriptor,
    keys: &[String],
) {
    if msg.has_field(mask_field) {
        return;
    }
    let paths: Vec<Value> = keys
        .iter()
        .filter_map(|k| {
            body_type
                .get_field_by_json_name(k)
                .or_else(|| body_type.get_field_by_name(k))
        })
        .filter(is_changeable)
        .map(|f| Value::String(f.name().to_owned()))
        .collect();
    let mut mask = DynamicMessage::new(field_message(mask_field));
    mask.set_field_by_name("paths", Value::List(paths));
    msg.set_field(mask_field, Value::Message(mask));
}

/// Whether a field sent in a PATCH body is one to change: not the `etag`
/// (AIP-154: a precondition, checked by the service) and not an identifier
/// or output-only field (AIP-203: ignored on input).
fn is_changeable(f: &FieldDescriptor) -> bool {
    f.name() != "etag"
        && !field_behaviors(f)
            .iter()
            .any(|b| b == "IDENTIFIER" || b == "OUTPUT_ONLY")
}

fn is_field_mask(f: &FieldDescriptor) -> bool {
    matches!(f.kind(), Kind::Message(m) if m.full_name() == "google.protobuf.FieldMask")
}

fn field_message(f: &FieldDescriptor) -> MessageDescriptor {
    match f.kind() {
        Kind::Message(m) => m,
        _ => f.parent_message().clone(),
    }
}

/// Query parameters set the fields that neither the path nor a `*` body set.
fn apply_query(
    route: &Route,
    msg: &mut DynamicMessage,
    vars: &[(String, String)],
    query: &str,
) -> Result<(), Problem> {
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent::decode(key, false).ok_or_else(|| {
            Problem::new(
                http::StatusCode::BAD_REQUEST,
                "bad percent-encoding in the query",
            )
        })?;
        let value = percent::decode(&value.replace('+', " "), false)
            .ok_or_else(|| Problem::bad_field(&key, "bad percent-encoding"))?;
        let path = proto_path(&msg.descriptor(), &key)
            .ok_or_else(|| Problem::bad_field(&key, "unknown query parameter"))?;
        let in_body = match &route.body {
            RequestBody::None => false,
            RequestBody::Whole => true,
            RequestBody::Field(field, _) => path.split('.').next() == Some(field.name()),
        };
        if in_body || vars.iter().any(|(v, _)| *v == path) {
            return Err(Problem::bad_field(
                &key,
                "this field cannot be set in the query here",
            ));
        }
        set_path(msg, &path, &value, true).map_err(|e| Problem::bad_field(&key, e))?;
    }
    Ok(())
}

/// The proto field path for a query key given with JSON or proto names.
fn proto_path(desc: &MessageDescriptor, key: &str) -> Option<String> {
    let mut names = Vec::new();
    let mut current = desc.clone();
    let mut parts = key.split('.').peekable();
    while let Some(part) = parts.next() {
        let f = current
            .get_field_by_json_name(part)
            .or_else(|| current.get_field_by_name(part))?;
        names.push(f.name().to_owned());
        if parts.peek().is_some() {
            let Kind::Message(m) = f.kind() else {
                return None;
            };
            current = m;
        }
    }
    Some(names.join("."))
}

/// Sets `path` (e.g. `user.id`) to `raw` parsed as the field's type;
/// repeated fields gain an element when `append`.
fn set_path(msg: &mut DynamicMessage, path: &str, raw: &str, append: bool) -> Result<(), String> {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let field = msg
        .descriptor()
        .get_field_by_name(head)
        .ok_or_else(|| format!("no field {head}"))?;
    match rest {
        Some(rest) => {
            let Kind::Message(_) = field.kind() else {
                return Err(format!("{head} has no fields"));
            };
            match msg.get_field_mut(&field) {
                Value::Message(inner) => set_path(inner, rest, raw, append),
                _ => Err(format!("{head} is not a message")),
            }
        }
        None if is_field_mask(&field) => {
            let paths = raw
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(proto_field_name(p)))
                .collect();
            let mut mask = DynamicMessage::new(field_message(&field));
            mask.set_field_by_name("paths", Value::List(paths));
            msg.set_field(&field, Value::Message(mask));
            Ok(())
        }
        None => {
            let value = scalar(&field, raw)?;
            if field.is_list() {
                if !append {
                    return Err("cannot bind a list from the path".into());
                }
                if let Value::List(list) = msg.get_field_mut(&field) {
                    list.push(value);
                }
            } else {
                msg.set_field(&field, value);
            }
            Ok(())
        }
    }
}

/// A scalar from its text, as the proto3 JSON mapping writes it.
fn scalar(field: &FieldDescriptor, raw: &str) -> Result<Value, String> {
    let bad = |what: &str| format!("must be {what}");
    Ok(match field.kind() {
        Kind::String => Value::String(raw.to_owned()),
        Kind::Bool => Value::Bool(raw.parse().map_err(|_| bad("true or false"))?),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(raw.parse().map_err(|_| bad("a 32-bit integer"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(raw.parse().map_err(|_| bad("a 64-bit integer"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => {
            Value::U32(raw.parse().map_err(|_| bad("an unsigned 32-bit integer"))?)
        }
        Kind::Uint64 | Kind::Fixed64 => {
            Value::U64(raw.parse().map_err(|_| bad("an unsigned 64-bit integer"))?)
        }
        Kind::Float => Value::F32(raw.parse().map_err(|_| bad("a number"))?),
        Kind::Double => Value::F64(raw.parse().map_err(|_| bad("a number"))?),
        Kind::Enum(e) => {
            let v = e
                .get_value_by_name(raw)
                .or_else(|| raw.parse().ok().and_then(|n| e.get_value(n)))
                .ok_or_else(|| bad("one of the enum's names"))?;
            Value::EnumNumber(v.number())
        }
        Kind::Bytes | Kind::Message(_) => return Err("cannot be given as text here".into()),
    })
}

/// The JSON of a response, or of its `response_body` field.
pub fn response(route: &Route, bytes: &[u8]) -> Result<serde_json::Value, String> {
    reply(route, bytes).map(|(_, json)| json)
}

/// A response decoded, and its JSON (or its `response_body` field's).
pub fn reply(route: &Route, bytes: &[u8]) -> Result<(DynamicMessage, serde_json::Value), String> {
    let msg = DynamicMessage::decode(route.method.output(), bytes).map_err(|e| e.to_string())?;
    let json = to_json(route, &msg)?;
    Ok((msg, json))
}

fn to_json(route: &Route, msg: &DynamicMessage) -> Result<serde_json::Value, String> {
    let json = msg
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .map_err(|e| e.to_string())?;
    Ok(match &route.response_body {
        ResponseBody::Whole => json,
        // A default (unset) field is left out of the JSON: `{}` then.
        ResponseBody::Field(field) => json
            .get(field.json_name())
            .cloned()
            .unwrap_or_else(|| serde_json::json!({})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::routes::RouteTable;

    fn table() -> RouteTable {
        let pool = prost_reflect::DescriptorPool::decode(suite_proto::FILE_DESCRIPTOR_SET)
            .expect("descriptors");
        RouteTable::from_pool(&pool, &crate::ROUTED_SERVICES).expect("routes")
    }

    #[test]
    fn a_malformed_escape_in_the_query_is_refused() {
        let table = table();
        let (route, vars) = table
            .find(&http::Method::GET, "/api/v1/users")
            .expect("ListUsers");
        let ok = request(route, &vars, Some("pageToken=a%20b"), b"").expect("decoded");
        let token = ok.get_field_by_name("page_token").expect("field");
        assert_eq!(token.as_str(), Some("a b"));
        let bad = request(route, &vars, Some("pageToken=%+1"), b"").expect_err("refused");
        assert_eq!(bad.status, http::StatusCode::BAD_REQUEST);
        assert_eq!(bad.violations[0].0, "pageToken");
        // In a key, `%+1` is no escape either (not byte 1, an unknown key).
        let bad = request(route, &vars, Some("%+1=x"), b"").expect_err("refused");
        assert_eq!(bad.detail, "bad percent-encoding in the query");
    }

    #[test]
    fn a_body_field_cannot_set_the_fields_beside_it() {
        let table = table();
        let (route, vars) = table
            .find(&http::Method::PATCH, "/api/v1/users/u1")
            .expect("UpdateUser");
        let ok = request(route, &vars, None, br#"{"displayName":"x"}"#).expect("decoded");
        let mask = ok.get_field_by_name("update_mask").expect("mask");
        assert_eq!(
            mask.as_message()
                .and_then(|m| m.get_field_by_name("paths"))
                .and_then(|p| p.as_list().map(<[Value]>::to_vec)),
            Some(vec![Value::String("display_name".into())])
        );
        let smuggled = br#"{"displayName":"x"},"updateMask":"email""#;
        let bad = request(route, &vars, None, smuggled).expect_err("refused");
        assert_eq!(bad.status, http::StatusCode::BAD_REQUEST);
        assert!(bad.detail.contains("invalid JSON body"), "{}", bad.detail);
    }
}
