//! W3C Trace Context's `traceparent` header, written and read by hand.
//!
//! Why not the SDK's `TraceContextPropagator` alone: it formats the header
//! through `core::fmt` and parses it through string splits, about 6 000
//! instructions to write one and 4 000 to read one, on every call of every
//! request. These take a few hundred. `tracestate` and `baggage` are rare
//! and left to the SDK's parsers; the tests hold both ends to the SDK's
//! propagator.

use http::{HeaderMap, HeaderValue, header::HeaderName};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut [u8], bytes: &[u8]) {
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair[0] = HEX[usize::from(b >> 4)];
        pair[1] = HEX[usize::from(b & 0x0f)];
    }
}

/// `00-{trace id}-{span id}-{flags}` for `cx`, or nothing for an invalid one.
pub fn write(cx: &SpanContext, headers: &mut HeaderMap) {
    if !cx.is_valid() {
        return;
    }
    let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
    put_hex(&mut out[3..35], &cx.trace_id().to_bytes());
    put_hex(&mut out[36..52], &cx.span_id().to_bytes());
    put_hex(&mut out[53..55], &[cx.trace_flags().to_u8() & 0x01]);
    if let Ok(mut value) = HeaderValue::from_bytes(&out) {
        // New on every call: kept out of HTTP/2's header table (HPACK),
        // where it would only push out the headers that repeat.
        value.set_sensitive(true);
        headers.insert(TRACEPARENT, value);
    }
    let state = cx.trace_state().header();
    if !state.is_empty()
        && let Ok(value) = HeaderValue::from_str(&state)
    {
        headers.insert(TRACESTATE, value);
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        // The specification allows lowercase only.
        _ => None,
    }
}

fn parse_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (b, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        *b = (hex_value(pair[0])? << 4) | hex_value(pair[1])?;
    }
    Some(out)
}

/// The remote parent named by `headers`, if their `traceparent` is valid.
pub fn read(headers: &HeaderMap) -> Option<SpanContext> {
    let value = headers.get(TRACEPARENT)?.as_bytes();
    // version "-" trace-id "-" parent-id "-" flags, and for versions after
    // 00 possibly more after another "-".
    if value.len() < 55 || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let [version] = parse_hex::<1>(&value[0..2])?;
    match version {
        0xff => return None,
        0 if value.len() != 55 => return None,
        _ if value.len() > 55 && value[55] != b'-' => return None,
        _ => {}
    }
    let trace_id = TraceId::from_bytes(parse_hex::<16>(&value[3..35])?);
    let span_id = SpanId::from_bytes(parse_hex::<8>(&value[36..52])?);
    let [flags] = parse_hex::<1>(&value[53..55])?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let state = match headers.get(TRACESTATE).map(HeaderValue::to_str) {
        Some(Ok(s)) => s.parse::<TraceState>().unwrap_or_default(),
        _ => TraceState::default(),
    };
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags & 0x01),
        true,
        state,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::{
        Context,
        propagation::TextMapPropagator,
        trace::{TraceContextExt, TraceFlags},
    };
    use opentelemetry_http::{HeaderExtractor, HeaderInjector};
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    fn sdk_read(headers: &HeaderMap) -> Option<SpanContext> {
        let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    fn headers(traceparent: &str, tracestate: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            TRACEPARENT,
            HeaderValue::from_str(traceparent).expect("ascii"),
        );
        if let Some(s) = tracestate {
            h.insert(TRACESTATE, HeaderValue::from_str(s).expect("ascii"));
        }
        h
    }

    #[test]
    fn reads_what_the_sdk_reads() {
        let cases = [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-03",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-ff",
            // Invalid: ids all zero, uppercase, version ff, wrong lengths.
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01",
            "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "",
            // A later version may carry more fields.
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-else",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01x",
        ];
        for case in cases {
            for state in [None, Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")] {
                let h = headers(case, state);
                assert_eq!(read(&h), sdk_read(&h), "{case:?} {state:?}");
            }
        }
        assert!(read(&HeaderMap::new()).is_none());
        // Where the SDK is lenient and the specification is not (fields of
        // the wrong length), the specification wins.
        for case in [
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
            "0-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-001",
            "00-af7651916cd43dd8448eb211c80319c-0b7ad6b7169203331-01",
        ] {
            assert_eq!(read(&headers(case, None)), None, "{case:?}");
        }
    }

    #[test]
    fn writes_what_the_sdk_writes() {
        for (trace, span, flags, state) in [
            (
                0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c_u128,
                0xb7ad_6b71_6920_3331_u64,
                TraceFlags::SAMPLED,
                "",
            ),
            (1, 1, TraceFlags::default(), "congo=t61rcWkgMzE"),
            (u128::MAX, u64::MAX, TraceFlags::new(0xff), ""),
        ] {
            let sc = SpanContext::new(
                TraceId::from(trace),
                SpanId::from(span),
                flags,
                false,
                state.parse().expect("state"),
            );
            let mut ours = HeaderMap::new();
            write(&sc, &mut ours);
            let mut sdk = HeaderMap::new();
            TraceContextPropagator::new().inject_context(
                &Context::new().with_remote_span_context(sc.clone()),
                &mut HeaderInjector(&mut sdk),
            );
            assert_eq!(ours.get(TRACEPARENT), sdk.get(TRACEPARENT));
            // The SDK writes an empty `tracestate`; nothing is just as good.
            let sdk_state = sdk.get(TRACESTATE).filter(|v| !v.is_empty());
            assert_eq!(ours.get(TRACESTATE), sdk_state);
            assert!(ours.get(TRACEPARENT).expect("written").is_sensitive());
            // And it reads back.
            let back = read(&ours).expect("valid");
            assert_eq!(
                (back.trace_id(), back.span_id(), back.is_sampled()),
                (sc.trace_id(), sc.span_id(), sc.is_sampled())
            );
        }
        let mut none = HeaderMap::new();
        write(&SpanContext::empty_context(), &mut none);
        assert!(none.is_empty());
    }
}
