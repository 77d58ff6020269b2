//! A batch of finished spans as the protobuf bytes of an OTLP
//! `ExportTraceServiceRequest`, written in one pass into one buffer.
//!
//! Why not `opentelemetry-proto`'s messages and prost: converting each span
//! into owned message structs (a `String` per attribute key and value) and
//! encoding them (prost sizes a nested message again at every level above
//! it) cost about 15 µs of CPU a span, more than the request it described.
//! Here sizes are computed once per span and nothing is allocated per span.
//! The tests check the bytes against `opentelemetry-proto`'s own conversion.

use opentelemetry::{
    InstrumentationScope, KeyValue, Value,
    trace::{SpanContext, SpanKind, Status},
};
use opentelemetry_sdk::trace::SpanData;
use std::time::SystemTime;

// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

// W3C flags the OTLP span carries beside the sampled bit.
const FLAGS_HAS_IS_REMOTE: u32 = 0x100;
const FLAGS_IS_REMOTE: u32 = 0x200;

fn varint_len(v: u64) -> usize {
    // 7 bits a byte; zero still takes one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn key_len(field: u32) -> usize {
    varint_len(u64::from(field << 3))
}

fn put_key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    put_varint(buf, u64::from((field << 3) | wire));
}

/// The size of a length-delimited field whose contents take `len` bytes.
fn delimited_len(field: u32, len: usize) -> usize {
    key_len(field) + varint_len(len as u64) + len
}

fn put_delimited_header(buf: &mut Vec<u8>, field: u32, len: usize) {
    put_key(buf, field, LEN);
    put_varint(buf, len as u64);
}

fn put_bytes(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_delimited_header(buf, field, bytes.len());
    buf.extend_from_slice(bytes);
}

/// proto3 leaves empty strings out.
fn string_len(field: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        delimited_len(field, s.len())
    }
}

fn put_string(buf: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_bytes(buf, field, s.as_bytes());
    }
}

fn uint_len(field: u32, v: u64) -> usize {
    if v == 0 {
        0
    } else {
        key_len(field) + varint_len(v)
    }
}

fn put_uint(buf: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(buf, field, VARINT);
        put_varint(buf, v);
    }
}

fn fixed64_len(field: u32, v: u64) -> usize {
    if v == 0 { 0 } else { key_len(field) + 8 }
}

fn put_fixed64(buf: &mut Vec<u8>, field: u32, v: u64) {
    if v != 0 {
        put_key(buf, field, FIXED64);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn fixed32_len(field: u32, v: u32) -> usize {
    if v == 0 { 0 } else { key_len(field) + 4 }
}

fn put_fixed32(buf: &mut Vec<u8>, field: u32, v: u32) {
    if v != 0 {
        put_key(buf, field, FIXED32);
        buf.extend_from_slice(&v.to_le_bytes());
    }
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// common.v1.AnyValue: a oneof, so even a default value is written.
fn any_value_len(v: &Value) -> usize {
    match v {
        Value::Bool(_) => 2,
        Value::I64(i) => 1 + varint_len(*i as u64),
        Value::F64(_) => 9,
        Value::String(s) => delimited_len(1, s.as_str().len()),
        Value::Array(a) => delimited_len(5, array_len(a)),
        // A kind this encoder does not know yet travels as its text.
        other => delimited_len(1, other.as_str().len()),
    }
}

fn put_any_value(buf: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(b) => {
            put_key(buf, 2, VARINT);
            buf.push(u8::from(*b));
        }
        Value::I64(i) => {
            put_key(buf, 3, VARINT);
            put_varint(buf, *i as u64);
        }
        Value::F64(f) => {
            put_key(buf, 4, FIXED64);
            buf.extend_from_slice(&f.to_le_bytes());
        }
        Value::String(s) => put_bytes(buf, 1, s.as_str().as_bytes()),
        Value::Array(a) => {
            put_delimited_header(buf, 5, array_len(a));
            put_array(buf, a);
        }
        other => put_bytes(buf, 1, other.as_str().as_bytes()),
    }
}

// common.v1.ArrayValue { repeated AnyValue values = 1; }
fn array_len(a: &opentelemetry::Array) -> usize {
    use opentelemetry::Array;
    let each = |v: Value| delimited_len(1, any_value_len(&v));
    match a {
        Array::Bool(v) => v.iter().map(|b| each(Value::Bool(*b))).sum(),
        Array::I64(v) => v.iter().map(|i| each(Value::I64(*i))).sum(),
        Array::F64(v) => v.iter().map(|f| each(Value::F64(*f))).sum(),
        Array::String(v) => v
            .iter()
            .map(|s| delimited_len(1, delimited_len(1, s.as_str().len())))
            .sum(),
        other => delimited_len(1, delimited_len(1, other.to_string().len())),
    }
}

fn put_array(buf: &mut Vec<u8>, a: &opentelemetry::Array) {
    use opentelemetry::Array;
    let each = |buf: &mut Vec<u8>, v: &Value| {
        put_delimited_header(buf, 1, any_value_len(v));
        put_any_value(buf, v);
    };
    match a {
        Array::Bool(v) => v.iter().for_each(|b| each(buf, &Value::Bool(*b))),
        Array::I64(v) => v.iter().for_each(|i| each(buf, &Value::I64(*i))),
        Array::F64(v) => v.iter().for_each(|f| each(buf, &Value::F64(*f))),
        Array::String(v) => v.iter().for_each(|s| {
            let s = s.as_str();
            put_delimited_header(buf, 1, delimited_len(1, s.len()));
            put_bytes(buf, 1, s.as_bytes());
        }),
        other => each(buf, &Value::String(other.to_string().into())),
    }
}

// common.v1.KeyValue { string key = 1; AnyValue value = 2; }
fn key_value_len(kv: &KeyValue) -> usize {
    string_len(1, kv.key.as_str()) + delimited_len(2, any_value_len(&kv.value))
}

fn attributes_len(field: u32, attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|kv| delimited_len(field, key_value_len(kv)))
        .sum()
}

fn put_attributes(buf: &mut Vec<u8>, field: u32, attributes: &[KeyValue]) {
    for kv in attributes {
        // Each size once: this runs for every attribute of every span.
        let key = kv.key.as_str();
        let value_len = any_value_len(&kv.value);
        put_delimited_header(buf, field, string_len(1, key) + delimited_len(2, value_len));
        put_string(buf, 1, key);
        put_delimited_header(buf, 2, value_len);
        put_any_value(buf, &kv.value);
    }
}

/// The encoded body of a `resource.v1.Resource` with `attributes`.
pub fn resource(attributes: &[KeyValue]) -> Vec<u8> {
    let mut buf = Vec::with_capacity(attributes_len(1, attributes));
    put_attributes(&mut buf, 1, attributes);
    buf
}

fn flags(cx: &SpanContext, remote: bool) -> u32 {
    u32::from(cx.trace_flags().to_u8())
        | FLAGS_HAS_IS_REMOTE
        | if remote { FLAGS_IS_REMOTE } else { 0 }
}

fn kind(k: &SpanKind) -> u64 {
    match k {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

// trace.v1.Status { string message = 2; StatusCode code = 3; }
fn status_parts(s: &Status) -> (&str, u64) {
    match s {
        Status::Unset => ("", 0),
        Status::Ok => ("", 1),
        Status::Error { description } => (description, 2),
    }
}

fn status_len(s: &Status) -> usize {
    let (message, code) = status_parts(s);
    string_len(2, message) + uint_len(3, code)
}

fn put_status(buf: &mut Vec<u8>, s: &Status) {
    let (message, code) = status_parts(s);
    put_string(buf, 2, message);
    put_uint(buf, 3, code);
}

// trace.v1.Span.Event { fixed64 time = 1; string name = 2; attributes = 3; dropped = 4 }
fn event_len(e: &opentelemetry::trace::Event) -> usize {
    fixed64_len(1, nanos(e.timestamp))
        + string_len(2, &e.name)
        + attributes_len(3, &e.attributes)
        + uint_len(4, u64::from(e.dropped_attributes_count))
}

fn put_event(buf: &mut Vec<u8>, e: &opentelemetry::trace::Event) {
    put_fixed64(buf, 1, nanos(e.timestamp));
    put_string(buf, 2, &e.name);
    put_attributes(buf, 3, &e.attributes);
    put_uint(buf, 4, u64::from(e.dropped_attributes_count));
}

// trace.v1.Span.Link { trace_id = 1; span_id = 2; trace_state = 3;
// attributes = 4; dropped = 5; fixed32 flags = 6 }
fn link_len(l: &opentelemetry::trace::Link) -> usize {
    let cx = &l.span_context;
    delimited_len(1, 16)
        + delimited_len(2, 8)
        + string_len(3, &cx.trace_state().header())
        + attributes_len(4, &l.attributes)
        + uint_len(5, u64::from(l.dropped_attributes_count))
        + fixed32_len(6, flags(cx, cx.is_remote()))
}

fn put_link(buf: &mut Vec<u8>, l: &opentelemetry::trace::Link) {
    let cx = &l.span_context;
    put_bytes(buf, 1, &cx.trace_id().to_bytes());
    put_bytes(buf, 2, &cx.span_id().to_bytes());
    put_string(buf, 3, &cx.trace_state().header());
    put_attributes(buf, 4, &l.attributes);
    put_uint(buf, 5, u64::from(l.dropped_attributes_count));
    put_fixed32(buf, 6, flags(cx, cx.is_remote()));
}

fn has_parent(s: &SpanData) -> bool {
    s.parent_span_id != opentelemetry::trace::SpanId::INVALID
}

// trace.v1.Span; the field numbers are the comments' order in trace.proto.
fn put_span(buf: &mut Vec<u8>, s: &SpanData, trace_state: &str) {
    let cx = &s.span_context;
    put_bytes(buf, 1, &cx.trace_id().to_bytes());
    put_bytes(buf, 2, &cx.span_id().to_bytes());
    put_string(buf, 3, trace_state);
    if has_parent(s) {
        put_bytes(buf, 4, &s.parent_span_id.to_bytes());
    }
    put_string(buf, 5, &s.name);
    put_uint(buf, 6, kind(&s.span_kind));
    put_fixed64(buf, 7, nanos(s.start_time));
    put_fixed64(buf, 8, nanos(s.end_time));
    put_attributes(buf, 9, &s.attributes);
    put_uint(buf, 10, u64::from(s.dropped_attributes_count));
    for e in s.events.iter() {
        put_delimited_header(buf, 11, event_len(e));
        put_event(buf, e);
    }
    put_uint(buf, 12, u64::from(s.events.dropped_count));
    for l in s.links.iter() {
        put_delimited_header(buf, 13, link_len(l));
        put_link(buf, l);
    }
    put_uint(buf, 14, u64::from(s.links.dropped_count));
    put_delimited_header(buf, 15, status_len(&s.status));
    put_status(buf, &s.status);
    put_fixed32(buf, 16, flags(cx, s.parent_span_is_remote));
}

// common.v1.InstrumentationScope { name = 1; version = 2; attributes = 3 }
fn scope_len(scope: &InstrumentationScope) -> usize {
    string_len(1, scope.name())
        + string_len(2, scope.version().unwrap_or_default())
        + attributes_len(3, &scope.attributes().cloned().collect::<Vec<_>>())
}

fn put_scope(buf: &mut Vec<u8>, scope: &InstrumentationScope) {
    put_string(buf, 1, scope.name());
    put_string(buf, 2, scope.version().unwrap_or_default());
    put_attributes(buf, 3, &scope.attributes().cloned().collect::<Vec<_>>());
}

/// Appends `span` to `buf` as one `ScopeSpans.spans` field (tag, length,
/// body): spans are encoded one by one as they end, grouped by scope.
pub fn scope_span(buf: &mut Vec<u8>, span: &SpanData) {
    // The body first, then its tag and length in front of it: one pass
    // over the span instead of one to size it and one to write it.
    let start = buf.len();
    put_span(buf, span, &span.span_context.trace_state().header());
    // Tag 2, wire type LEN, then the length as a varint; on the stack.
    let mut header = [(2 << 3) | LEN as u8; 11];
    let mut n = 1;
    let mut len = (buf.len() - start) as u64;
    while len >= 0x80 {
        header[n] = (len as u8) | 0x80;
        len >>= 7;
        n += 1;
    }
    header[n] = len as u8;
    buf.splice(start..start, header[..=n].iter().copied());
}

/// `ExportTraceServiceRequest { resource_spans: [ResourceSpans { resource,
/// scope_spans: [one per group], schema_url }] }`, `resource` being the
/// encoded body of the `Resource` message and each group's bytes a run of
/// [`scope_span`]s.
pub fn request_from_groups(
    resource: &[u8],
    resource_schema_url: &str,
    groups: &[(&InstrumentationScope, &[u8])],
) -> Vec<u8> {
    // ScopeSpans { scope = 1; repeated Span spans = 2; schema_url = 3 }
    let group_len = |scope: &InstrumentationScope, spans: &[u8]| {
        delimited_len(1, scope_len(scope))
            + spans.len()
            + string_len(3, scope.schema_url().unwrap_or_default())
    };
    // ResourceSpans { resource = 1; repeated ScopeSpans scope_spans = 2; schema_url = 3 }
    let resource_spans_len = delimited_len(1, resource.len())
        + groups
            .iter()
            .map(|(scope, spans)| delimited_len(2, group_len(scope, spans)))
            .sum::<usize>()
        + string_len(3, resource_schema_url);
    let total = delimited_len(1, resource_spans_len);

    let mut buf = Vec::with_capacity(total);
    put_delimited_header(&mut buf, 1, resource_spans_len);
    put_bytes(&mut buf, 1, resource);
    for (scope, spans) in groups {
        put_delimited_header(&mut buf, 2, group_len(scope, spans));
        put_delimited_header(&mut buf, 1, scope_len(scope));
        put_scope(&mut buf, scope);
        buf.extend_from_slice(spans);
        put_string(&mut buf, 3, scope.schema_url().unwrap_or_default());
    }
    put_string(&mut buf, 3, resource_schema_url);
    debug_assert_eq!(buf.len(), total);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::{
        Array, InstrumentationScope, KeyValue, StringValue,
        trace::{
            Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
        },
    };
    use opentelemetry_proto::{
        tonic::collector::trace::v1::ExportTraceServiceRequest,
        transform::{
            common::tonic::ResourceAttributesWithSchema,
            trace::tonic::group_spans_by_resource_and_scope,
        },
    };
    use opentelemetry_sdk::{
        Resource,
        trace::{SpanEvents, SpanLinks},
    };
    use prost::Message;
    use std::{
        borrow::Cow,
        time::{Duration, SystemTime},
    };

    /// A batch as the processor sends it: each span through [`scope_span`],
    /// grouped by scope in the order the scopes first appear.
    fn request(resource: &[u8], resource_schema_url: &str, spans: &[SpanData]) -> Vec<u8> {
        let mut groups: Vec<(&InstrumentationScope, Vec<u8>)> = Vec::new();
        for s in spans {
            let at = match groups
                .iter()
                .position(|(scope, _)| **scope == s.instrumentation_scope)
            {
                Some(at) => at,
                None => {
                    groups.push((&s.instrumentation_scope, Vec::new()));
                    groups.len() - 1
                }
            };
            scope_span(&mut groups[at].1, s);
        }
        let groups: Vec<(&InstrumentationScope, &[u8])> = groups
            .iter()
            .map(|(scope, b)| (*scope, b.as_slice()))
            .collect();
        request_from_groups(resource, resource_schema_url, &groups)
    }

    fn context(trace: u128, span: u64, sampled: bool, remote: bool, state: &str) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            remote,
            state.parse::<TraceState>().expect("trace state"),
        )
    }

    fn span(i: u64, scope: &InstrumentationScope) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + i);
        let mut events = SpanEvents::default();
        let mut links = SpanLinks::default();
        if i % 2 == 1 {
            events.events.push(Event::new(
                "retry",
                start + Duration::from_micros(5),
                vec![KeyValue::new("attempt", 2_i64)],
                1,
            ));
            events.dropped_count = 3;
            links.links.push(Link::new(
                context(7, 8, true, true, "vendor=x"),
                vec![KeyValue::new("why", "batch")],
                0,
            ));
            links.dropped_count = 1;
        }
        SpanData {
            span_context: context(
                0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c + u128::from(i),
                0xb7ad_6b71_6920_3331 + i,
                i != 3,
                false,
                if i == 2 { "congo=t61rcWkgMzE" } else { "" },
            ),
            parent_span_id: if i == 0 {
                SpanId::INVALID
            } else {
                SpanId::from(i)
            },
            parent_span_is_remote: i == 1,
            span_kind: [
                SpanKind::Server,
                SpanKind::Client,
                SpanKind::Internal,
                SpanKind::Producer,
                SpanKind::Consumer,
            ][usize::try_from(i % 5).expect("small")]
            .clone(),
            name: if i == 4 {
                Cow::Owned(String::new())
            } else {
                Cow::Owned(format!("GET /api/v1/users/{{id}} #{i}"))
            },
            start_time: start,
            end_time: start + Duration::from_micros(250 + i),
            attributes: vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("url.path", format!("/api/v1/users/{i}")),
                KeyValue::new("http.response.status_code", 200_i64),
                KeyValue::new("negative", -(i as i64) - 1),
                KeyValue::new("zero", 0_i64),
                KeyValue::new("ratio", 0.25_f64),
                KeyValue::new("flag", i.is_multiple_of(2)),
                KeyValue::new("empty", ""),
                KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("ints", Value::Array(Array::I64(vec![-1, 0, 300]))),
                KeyValue::new("floats", Value::Array(Array::F64(vec![1.5]))),
                KeyValue::new(
                    "strings",
                    Value::Array(Array::String(vec![
                        StringValue::from("a"),
                        StringValue::from(""),
                    ])),
                ),
                KeyValue::new("long", "x".repeat(200)),
            ],
            dropped_attributes_count: u32::try_from(i).expect("small"),
            events,
            links,
            status: match i % 3 {
                0 => Status::Unset,
                1 => Status::error("Unauthenticated"),
                _ => Status::Ok,
            },
            instrumentation_scope: scope.clone(),
        }
    }

    #[test]
    fn batches_encode_as_opentelemetry_proto_encodes_them() {
        let suite = InstrumentationScope::builder("suite").build();
        let other = InstrumentationScope::builder("other")
            .with_version("1.2.3")
            .with_schema_url("https://opentelemetry.io/schemas/1.26.0")
            .with_attributes([KeyValue::new("lib", "x")])
            .build();
        let resource = Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "suite-gateway"),
                KeyValue::new("service.instance.id", "0193"),
            ])
            .build();
        let attributes: Vec<KeyValue> = resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        let encoded_resource = super::resource(&attributes);
        for spans in [
            vec![],
            vec![span(0, &suite)],
            (0..7)
                .map(|i| span(i, if i % 3 == 2 { &other } else { &suite }))
                .collect::<Vec<_>>(),
        ] {
            let ours = request(&encoded_resource, "", &spans);
            let reference = ExportTraceServiceRequest {
                resource_spans: group_spans_by_resource_and_scope(
                    spans,
                    &ResourceAttributesWithSchema::from(&resource),
                ),
            };
            let decoded = ExportTraceServiceRequest::decode(ours.as_slice()).expect("decodes");
            assert_eq!(decoded, reference);
            // Field for field what prost writes, so the same size too.
            assert_eq!(ours.len(), reference.encoded_len());
        }
    }

    #[test]
    fn varints_take_the_bytes_they_need() {
        for (v, len) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16_383, 2),
            (16_384, 3),
            (u64::MAX, 10),
        ] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            assert_eq!((buf.len(), varint_len(v)), (len, len), "{v}");
            assert_eq!(
                prost::encoding::decode_varint(&mut buf.as_slice()).ok(),
                Some(v)
            );
        }
    }
}
