//! The batch span processor: a finished span is encoded to OTLP bytes on the
//! thread that ends it and dropped there; full batches (or whatever waited
//! `OTEL_BSP_SCHEDULE_DELAY`) go to a task on the runtime that sends them.
//!
//! Why not the SDK's batch processor: it moves every finished span through
//! a channel into a queue and converts the batch later on another thread,
//! copying each span's data several times on the way. Here a span is
//! touched once, while it is still in the ending thread's cache, and a
//! queue holds bytes. The settings are the specification's `OTEL_BSP_*`.

use super::{OtlpExporter, encode};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{Span, SpanData, SpanProcessor},
};
use std::{
    cell::RefCell,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};
use tokio::sync::{Semaphore, mpsc};

/// `OTEL_BSP_*`, with the defaults the suite uses.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Spans waiting to be sent, at most (`OTEL_BSP_MAX_QUEUE_SIZE`).
    pub max_queue_size: usize,
    /// Spans a request carries, at most (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`).
    pub max_batch_size: usize,
    /// How long a span may wait for its batch to fill (`OTEL_BSP_SCHEDULE_DELAY`).
    pub schedule_delay: Duration,
    /// Requests in flight at once (`OTEL_BSP_MAX_CONCURRENT_EXPORTS`).
    pub max_concurrent_exports: usize,
}

impl BatchSettings {
    /// From the environment. Under load the specification's defaults (a
    /// 2048-span queue, one export at a time) drop most spans: 16384 and 2
    /// here. A value that is not a positive number is an error naming it.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`], reading variables through `var`.
    fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let read = |name: &str, default: u64| match var(name) {
            Some(v) if !v.trim().is_empty() => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name}={v:?}: give a positive whole number")),
            _ => Ok(default),
        };
        let size =
            |name, default| read(name, default).map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        let max_queue_size = size("OTEL_BSP_MAX_QUEUE_SIZE", 16_384)?;
        Ok(Self {
            max_queue_size,
            // A batch larger than the queue could never be sent whole.
            max_batch_size: size("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512)?.min(max_queue_size),
            schedule_delay: Duration::from_millis(read("OTEL_BSP_SCHEDULE_DELAY", 5_000)?),
            max_concurrent_exports: size("OTEL_BSP_MAX_CONCURRENT_EXPORTS", 2)?,
        })
    }
}

enum Job {
    Send {
        body: Vec<u8>,
        spans: usize,
    },
    /// Answered once everything before it has been sent (or has failed).
    Flush(std::sync::mpsc::Sender<()>),
}

/// The spans of one instrumentation scope, encoded.
struct ScopeSpans {
    scope: InstrumentationScope,
    spans: Vec<u8>,
}

#[derive(Default)]
struct Batch {
    groups: Vec<ScopeSpans>,
    spans: usize,
}

struct Inner {
    batch: Mutex<Batch>,
    resource: Mutex<(Vec<u8>, String)>,
    jobs: mpsc::Sender<Job>,
    max_batch_size: usize,
    dropped: AtomicU64,
    shut_down: AtomicBool,
}

impl Inner {
    /// The batch so far as one request (none if empty), leaving it empty.
    fn take(&self, batch: &mut Batch) -> Option<(Vec<u8>, usize)> {
        if batch.spans == 0 {
            return None;
        }
        let groups: Vec<(&InstrumentationScope, &[u8])> = batch
            .groups
            .iter()
            .filter(|g| !g.spans.is_empty())
            .map(|g| (&g.scope, g.spans.as_slice()))
            .collect();
        let body = {
            let resource = self.resource.lock().unwrap_or_else(|e| e.into_inner());
            encode::request_from_groups(&resource.0, &resource.1, &groups)
        };
        for g in &mut batch.groups {
            // Keeps its capacity for the next batch.
            g.spans.clear();
        }
        let spans = std::mem::take(&mut batch.spans);
        Some((body, spans))
    }

    fn queue(&self, body: Vec<u8>, spans: usize) {
        if self.jobs.try_send(Job::Send { body, spans }).is_err() {
            // The collector is slower than the spans come: the newest wait
            // least, so they are the ones let go (and counted).
            let before = self.dropped.fetch_add(spans as u64, Ordering::Relaxed);
            if before == 0 {
                tracing::warn!(spans, "span export queue full; dropping spans");
            }
        }
    }

    fn flush_partial(&self) {
        let taken = {
            let mut batch = self.batch.lock().unwrap_or_else(|e| e.into_inner());
            self.take(&mut batch)
        };
        if let Some((body, spans)) = taken {
            self.queue(body, spans);
        }
    }
}

thread_local! {
    /// Where a span is encoded before it joins the batch, outside the lock.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// See the module docs. Must be created inside the tokio runtime.
pub struct EncodingBatchProcessor {
    inner: Arc<Inner>,
    timeout: Duration,
}

impl std::fmt::Debug for EncodingBatchProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodingBatchProcessor")
            .field("max_batch_size", &self.inner.max_batch_size)
            .finish_non_exhaustive()
    }
}

impl EncodingBatchProcessor {
    /// Sends through `exporter`; `timeout` bounds a flush at shutdown.
    pub fn new(exporter: OtlpExporter, settings: BatchSettings, timeout: Duration) -> Self {
        let queued_batches = settings
            .max_queue_size
            .div_ceil(settings.max_batch_size)
            .max(1);
        let (jobs, rx) = mpsc::channel(queued_batches);
        let inner = Arc::new(Inner {
            batch: Mutex::new(Batch::default()),
            resource: Mutex::new((Vec::new(), String::new())),
            jobs,
            max_batch_size: settings.max_batch_size,
            dropped: AtomicU64::new(0),
            shut_down: AtomicBool::new(false),
        });
        tokio::spawn(run(
            Arc::downgrade(&inner),
            rx,
            Arc::new(exporter),
            settings,
        ));
        Self { inner, timeout }
    }
}

/// Sends queued batches, at most `max_concurrent_exports` at once, and
/// flushes what waited `schedule_delay`.
async fn run(
    inner: std::sync::Weak<Inner>,
    mut jobs: mpsc::Receiver<Job>,
    exporter: Arc<OtlpExporter>,
    settings: BatchSettings,
) {
    let permits = Arc::new(Semaphore::new(settings.max_concurrent_exports));
    let mut tick = tokio::time::interval(settings.schedule_delay);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            job = jobs.recv() => match job {
                Some(Job::Send { body, spans }) => {
                    let Ok(permit) = permits.clone().acquire_owned().await else { return };
                    let exporter = exporter.clone();
                    tokio::spawn(async move {
                        // Failures are logged by the exporter.
                        let _ = exporter.send(body, spans).await;
                        drop(permit);
                    });
                }
                Some(Job::Flush(done)) => {
                    // Every permit back: everything sent before has finished.
                    let all = u32::try_from(settings.max_concurrent_exports).unwrap_or(u32::MAX);
                    if let Ok(p) = permits.acquire_many(all).await {
                        drop(p);
                    }
                    let _ = done.send(());
                }
                None => return,
            },
            _ = tick.tick() => match inner.upgrade() {
                Some(inner) => inner.flush_partial(),
                None => return,
            },
        }
    }
}

impl SpanProcessor for EncodingBatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        // As the SDK's processors: recorded but not sampled is not exported.
        if !span.span_context.is_sampled() || self.inner.shut_down.load(Ordering::Relaxed) {
            return;
        }
        let full = SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            encode::scope_span(scratch, &span);
            let mut batch = self.inner.batch.lock().unwrap_or_else(|e| e.into_inner());
            let at = match batch
                .groups
                .iter()
                .position(|g| g.scope == span.instrumentation_scope)
            {
                Some(at) => at,
                None => {
                    batch.groups.push(ScopeSpans {
                        scope: span.instrumentation_scope.clone(),
                        spans: Vec::new(),
                    });
                    batch.groups.len() - 1
                }
            };
            batch.groups[at].spans.extend_from_slice(scratch);
            batch.spans += 1;
            if batch.spans >= self.inner.max_batch_size {
                self.inner.take(&mut batch)
            } else {
                None
            }
        });
        drop(span);
        if let Some((body, spans)) = full {
            self.inner.queue(body, spans);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.flush_partial();
        let (done, finished) = std::sync::mpsc::channel();
        self.inner
            .jobs
            .try_send(Job::Flush(done))
            .map_err(|_| OTelSdkError::InternalFailure("span export queue full".into()))?;
        // Blocks: the SDK calls this from a thread that may wait (our
        // shutdown runs it off the runtime's workers).
        finished
            .recv_timeout(self.timeout)
            .map_err(|_| OTelSdkError::Timeout(self.timeout))
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let flushed = self.force_flush();
        self.inner.shut_down.store(true, Ordering::Relaxed);
        flushed
    }

    fn set_resource(&mut self, resource: &Resource) {
        let attributes: Vec<KeyValue> = resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
            .collect();
        *self
            .inner
            .resource
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = (
            encode::resource(&attributes),
            resource.schema_url().unwrap_or_default().to_owned(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::Protocol;
    use axum::{Router, body::Bytes, extract::State, routing::post};
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use prost::Message;

    #[test]
    fn settings_default_override_and_refuse_nonsense() {
        let none = BatchSettings::from_lookup(|_| None).expect("defaults");
        assert_eq!(
            (
                none.max_queue_size,
                none.max_batch_size,
                none.max_concurrent_exports
            ),
            (16_384, 512, 2)
        );
        assert_eq!(none.schedule_delay, Duration::from_secs(5));
        let set = BatchSettings::from_lookup(|name| {
            Some(match name {
                "OTEL_BSP_MAX_QUEUE_SIZE" => "100".to_owned(),
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE" => "400".to_owned(),
                "OTEL_BSP_SCHEDULE_DELAY" => " 250 ".to_owned(),
                _ => String::new(),
            })
        })
        .expect("valid");
        // The batch is capped by the queue; an empty value is the default.
        assert_eq!((set.max_queue_size, set.max_batch_size), (100, 100));
        assert_eq!(set.schedule_delay, Duration::from_millis(250));
        assert_eq!(set.max_concurrent_exports, 2);
        for bad in ["0", "zero", "-1"] {
            let e = BatchSettings::from_lookup(|name| {
                (name == "OTEL_BSP_MAX_QUEUE_SIZE").then(|| bad.to_owned())
            })
            .expect_err("refused");
            assert!(e.starts_with("OTEL_BSP_MAX_QUEUE_SIZE="), "{e}");
        }
    }

    /// An OTLP/HTTP collector on an ephemeral port; the span counts of the
    /// requests it gets arrive on the returned channel.
    async fn collector() -> (String, mpsc::UnboundedReceiver<(usize, String)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = Router::new()
            .route(
                "/v1/traces",
                post(
                    |State(tx): State<mpsc::UnboundedSender<(usize, String)>>, body: Bytes| async move {
                        let request = ExportTraceServiceRequest::decode(body).expect("OTLP");
                        let resource = &request.resource_spans[0];
                        let service = resource
                            .resource
                            .as_ref()
                            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                            .map(|kv| format!("{:?}", kv.value))
                            .unwrap_or_default();
                        let spans = resource.scope_spans.iter().map(|s| s.spans.len()).sum();
                        let _ = tx.send((spans, service));
                    },
                ),
            )
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/v1/traces", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (url, rx)
    }

    async fn next_request(rx: &mut mpsc::UnboundedReceiver<(usize, String)>) -> (usize, String) {
        tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("a request within 5 s")
            .expect("collector running")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_batches_go_at_once_and_a_flush_sends_the_rest() {
        let (url, mut received) = collector().await;
        let exporter = OtlpExporter::new(Protocol::HttpProtobuf, &url, &[], Duration::from_secs(5))
            .expect("exporter");
        let settings = BatchSettings {
            max_queue_size: 8,
            max_batch_size: 2,
            // Only full batches and flushes send here.
            schedule_delay: Duration::from_secs(3600),
            max_concurrent_exports: 1,
        };
        let processor = EncodingBatchProcessor::new(exporter, settings, Duration::from_secs(5));
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(
                Resource::builder_empty()
                    .with_attribute(KeyValue::new("service.name", "batch-test"))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("test");
        for _ in 0..3 {
            tracer.start("work").end();
        }
        let (spans, service) = next_request(&mut received).await;
        assert_eq!(spans, 2, "a full batch is sent without waiting");
        assert!(service.contains("batch-test"), "{service}");
        assert!(received.try_recv().is_err(), "the third span waits");
        tokio::task::spawn_blocking(move || provider.force_flush())
            .await
            .expect("joined")
            .expect("flushed");
        assert_eq!(
            next_request(&mut received).await.0,
            1,
            "the flush sends the rest"
        );
    }
}
