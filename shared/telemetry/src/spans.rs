//! The suite's protocol spans (HTTP server, gRPC client and server,
//! database), made with the OpenTelemetry API directly. Everything else is
//! a plain `tracing` span (`#[tracing::instrument]`, `info_span!`), which
//! `tracing-opentelemetry` bridges into the same trace (see the crate docs):
//! that is how to add a span.
//!
//! Why the hot path does not use `tracing` spans too: measured, the bridge
//! cost about 6.5 µs of CPU a span (field visiting into owned strings, the
//! registry's extensions, enter/exit bookkeeping), 3 µs of it even for
//! spans not sampled, on four spans per request. Here a span not sampled
//! costs its ids and nothing more: attributes are built only for recording
//! spans.
//!
//! A span's [`Context`] is what carries it: children start under it, it is
//! injected into outgoing calls, and a future polled with it attached
//! ([`opentelemetry::context::FutureExt::with_context`]) gives log lines
//! their `trace_id` and `span_id` (see [`crate::telemetry`]).

use opentelemetry::{
    Context, KeyValue,
    trace::{SpanBuilder, SpanId, SpanKind, Status, TraceContextExt, TraceId, Tracer as _},
};
use opentelemetry_sdk::trace::SdkTracer;
use std::{
    borrow::Cow,
    collections::HashMap,
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

/// The tracers, set once when export is configured: one per service name
/// (the one-process suite exports each service under its own name), and
/// the default. Unset means no spans.
static TRACERS: OnceLock<Tracers> = OnceLock::new();

struct Tracers {
    by_service: HashMap<String, Tracer>,
    default: Tracer,
}

/// Whether the sampler records every new trace (`always_on`, the default
/// `parentbased_always_on`): then a root span is worth its attributes up
/// front.
static ROOTS_RECORDED: AtomicBool = AtomicBool::new(true);

/// Makes these the tracers spans are started with (the first ones installed
/// stay). `sampler` is `OTEL_TRACES_SAMPLER`, if set.
pub(crate) fn install(
    by_service: HashMap<String, SdkTracer>,
    default: SdkTracer,
    sampler: Option<&str>,
) {
    let roots_recorded = sampler.is_none_or(|s| {
        let s = s.trim();
        s.eq_ignore_ascii_case("always_on") || s.eq_ignore_ascii_case("parentbased_always_on")
    });
    ROOTS_RECORDED.store(roots_recorded, Ordering::Relaxed);
    let _ = TRACERS.set(Tracers {
        by_service: by_service
            .into_iter()
            .map(|(name, t)| (name, Tracer(Some(t))))
            .collect(),
        default: Tracer(Some(default)),
    });
}

/// Whether spans are made and exported at all.
pub fn enabled() -> bool {
    TRACERS.get().is_some()
}

/// Which service's spans these are: a server span's tracer, carried in the
/// context to every span started under it (client, database and `tracing`
/// spans alike), so each lands under its service's `service.name`.
#[derive(Debug, Clone, Default)]
pub struct Tracer(Option<SdkTracer>);

impl Tracer {
    /// The tracer of `service` (the binary's name, e.g. `suite-user`): its
    /// own where the process exports several services, else the default.
    pub fn of(service: &str) -> Self {
        TRACERS
            .get()
            .map(|t| t.by_service.get(service).unwrap_or(&t.default).clone())
            .unwrap_or_default()
    }

    /// Starts a span of `kind` as a child of `parent`'s span (or the root of
    /// a new trace), with the attributes `attributes` builds; neither they
    /// nor `name` are built when spans are off.
    pub fn start<I>(
        &self,
        kind: SpanKind,
        parent: &Context,
        name: impl FnOnce() -> Cow<'static, str>,
        attributes: impl FnOnce() -> I,
    ) -> Span
    where
        I: IntoIterator<Item = KeyValue>,
    {
        let Some(tracer) = &self.0 else {
            return Span::none();
        };
        // A span that will likely be recorded (a sampled parent's child, or
        // a root when every trace is) gets its attributes at the start, moved
        // into it whole; others get them only if recorded after all.
        let parent_span = parent.span();
        let parent_ids = parent_span.span_context();
        let likely = if parent_ids.is_valid() {
            parent_ids.is_sampled()
        } else {
            ROOTS_RECORDED.load(Ordering::Relaxed)
        };
        // Only a process of several services needs to know whose span it is.
        let one_service = TRACERS.get().is_none_or(|t| t.by_service.is_empty());
        let parent_with_tracer;
        let parent = if one_service || parent.get::<Tracer>().is_some() {
            parent
        } else {
            parent_with_tracer = parent.with_value(self.clone());
            &parent_with_tracer
        };
        if !likely {
            // Likely dropped: neither its name nor its attributes are made
            // unless the sampler keeps it after all (the samplers here look
            // at ids and the parent, not at names).
            let builder = SpanBuilder::from_name("").with_kind(kind);
            let span = Span {
                cx: parent.with_span(tracer.build_with_context(builder, parent)),
            };
            if span.is_recording() {
                span.cx.span().update_name(name());
                span.set_attributes(attributes);
            }
            return span;
        }
        let builder = SpanBuilder::from_name(name()).with_kind(kind);
        // Room for the ones set at the end (status codes).
        let mut all = Vec::with_capacity(8);
        all.extend(attributes());
        let span = tracer.build_with_context(builder.with_attributes(all), parent);
        Span {
            cx: parent.with_span(span),
        }
    }
}

/// An open span, ended when dropped (or by [`Span::end`]). Without a tracer
/// it is empty and every method does nothing.
#[derive(Debug, Default)]
pub struct Span {
    cx: Context,
}

impl Span {
    /// A span that records nothing (export off, or a call not worth tracing).
    pub fn none() -> Self {
        Self::default()
    }

    /// [`Tracer::start`] with the tracer `parent` carries (the service whose
    /// request this is), else the default one.
    pub fn start<I>(
        kind: SpanKind,
        parent: &Context,
        name: impl FnOnce() -> Cow<'static, str>,
        attributes: impl FnOnce() -> I,
    ) -> Self
    where
        I: IntoIterator<Item = KeyValue>,
    {
        match parent.get::<Tracer>() {
            Some(tracer) => tracer.start(kind, parent, name, attributes),
            None => match TRACERS.get() {
                // Borrowed: no tracer clone per span on the hot path.
                Some(t) => t.default.start(kind, parent, name, attributes),
                None => Self::none(),
            },
        }
    }

    /// Whether the span is sampled: worth giving attributes.
    pub fn is_recording(&self) -> bool {
        self.cx.has_active_span() && self.cx.span().is_recording()
    }

    /// Adds the attributes `attributes` builds, if the span is sampled.
    pub fn set_attributes<I>(&self, attributes: impl FnOnce() -> I)
    where
        I: IntoIterator<Item = KeyValue>,
    {
        if self.is_recording() {
            self.cx.span().set_attributes(attributes());
        }
    }

    /// Marks the span failed, with a message that must not quote values.
    pub fn set_error(&self, message: impl Into<Cow<'static, str>>) {
        if self.is_recording() {
            self.cx.span().set_status(Status::error(message));
        }
    }

    /// The context whose active span this is: the parent of its children
    /// and what outgoing calls carry.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// Ends the span now.
    pub fn end(self) {
        drop(self);
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if self.cx.has_active_span() {
            self.cx.span().end();
        }
    }
}

/// The ids of the span active on this thread (attached by a server layer
/// while it polls a request), if one is; they print as lowercase hex.
pub fn current_ids() -> Option<(TraceId, SpanId)> {
    Context::map_current(|cx| {
        let ids = cx.span().span_context().clone();
        ids.is_valid().then(|| (ids.trace_id(), ids.span_id()))
    })
}

/// A gRPC status code's name (`Unauthenticated`) as the status message of
/// a failed span; only failures pay for it.
pub fn grpc_code_name(code: i32) -> String {
    format!("{:?}", tonic::Code::from_i32(code))
}
