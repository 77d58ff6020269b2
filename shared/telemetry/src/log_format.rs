//! Log lines that name their trace: a line written while a request's span is
//! active gets its `trace_id` and `span_id` (the OpenTelemetry context on the
//! thread, see [`crate::spans`]), as `key=value` pairs at the end of a text
//! line or as two more members of a JSON line's object.

use std::fmt;
use tracing::{Event, Subscriber};
use tracing_subscriber::{
    fmt::{FmtContext, FormatEvent, FormatFields, format::Writer},
    registry::LookupSpan,
};

/// Wraps the event formatter `inner` (text or JSON, as `json` says).
#[derive(Debug, Clone)]
pub struct WithTraceIds<F> {
    inner: F,
    json: bool,
}

impl<F> WithTraceIds<F> {
    pub fn new(inner: F, json: bool) -> Self {
        Self { inner, json }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let Some((trace_id, span_id)) = crate::spans::current_ids() else {
            return self.inner.format_event(ctx, writer, event);
        };
        // The inner formatter ends the line; the ids go before its end.
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        if self.json {
            match body.strip_suffix('}') {
                Some(object) => writeln!(
                    writer,
                    r#"{object},"trace_id":"{trace_id}","span_id":"{span_id}"}}"#
                ),
                None => writer.write_str(&line),
            }
        } else {
            writeln!(writer, "{body} trace_id={trace_id} span_id={span_id}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::{
        Context,
        trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState},
    };
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::{fmt, prelude::*};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(json: bool) -> Vec<String> {
        let out = Captured::default();
        let sink = out.clone();
        let layer = if json {
            fmt::layer()
                .json()
                .event_format(WithTraceIds::new(fmt::format().json(), true))
                .with_writer(move || sink.clone())
                .boxed()
        } else {
            fmt::layer()
                .with_ansi(false)
                .event_format(WithTraceIds::new(fmt::format().with_ansi(false), false))
                .with_writer(move || sink.clone())
                .boxed()
        };
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(n = 1, "outside");
            let ids = SpanContext::new(
                TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").expect("hex"),
                SpanId::from_hex("b7ad6b7169203331").expect("hex"),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            );
            let _guard = Context::new().with_remote_span_context(ids).attach();
            tracing::warn!(n = 2, "inside");
        });
        let text = String::from_utf8(out.0.lock().expect("lock").clone()).expect("utf-8");
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn text_lines_inside_a_span_end_with_its_ids() {
        let lines = lines(false);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].ends_with("outside n=1"), "{}", lines[0]);
        assert!(
            lines[1].ends_with(
                "inside n=2 trace_id=0af7651916cd43dd8448eb211c80319c span_id=b7ad6b7169203331"
            ),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn json_lines_inside_a_span_carry_its_ids() {
        let lines = lines(true);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let outside: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert!(outside.get("trace_id").is_none());
        let inside: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
        assert_eq!(inside["fields"]["message"], "inside");
        assert_eq!(inside["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(inside["span_id"], "b7ad6b7169203331");
    }
}
