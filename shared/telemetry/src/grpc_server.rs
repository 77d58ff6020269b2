//! The server side of every gRPC call: a tower layer that opens the server
//! span (continuing the caller's trace from `traceparent`), counts the call
//! in the RPC metrics, and records its `grpc-status` on both, from the
//! headers of a trailers-only answer or from the trailers.

use crate::{
    grpc_status,
    metrics::{RpcLabels, RpcServiceLabels, metrics},
    spans::{Span, Tracer, grpc_code_name},
};
use opentelemetry::{KeyValue, context::FutureExt as _, trace::SpanKind};
use std::{
    borrow::Cow,
    task::{Context, Poll},
    time::Instant,
};
use tonic::body::Body;
use tower::{Layer, Service};

/// The standard services every server of the suite also serves.
const STANDARD_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// What a call to a path the server does not serve is labelled: a client
/// must not be able to grow the metrics by inventing paths.
pub const OTHER: &str = "other";

#[derive(Debug, Clone)]
pub struct RpcServerLayer {
    served: &'static [&'static str],
    tracer: Tracer,
}

impl RpcServerLayer {
    /// The layer of the server of the binary `name` (its spans' service),
    /// serving `served` (and the standard services).
    pub fn new(name: &str, served: &'static [&'static str]) -> Self {
        Self {
            served,
            tracer: Tracer::of(name),
        }
    }
}

impl<S> Layer<S> for RpcServerLayer {
    type Service = RpcServer<S>;
    fn layer(&self, inner: S) -> RpcServer<S> {
        RpcServer {
            inner,
            served: self.served,
            tracer: self.tracer.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RpcServer<S> {
    inner: S,
    served: &'static [&'static str],
    tracer: Tracer,
}

impl<S, B> Service<http::Request<B>> for RpcServer<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = crate::TracedCall<S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let known = self.served.contains(&service) || STANDARD_SERVICES.contains(&service);
        let (service, method) = if known {
            (service.to_owned(), method.to_owned())
        } else {
            (OTHER.to_owned(), OTHER.to_owned())
        };
        // Probes and tooling (health, reflection) would be most of the
        // traces and none of the interest: metrics only.
        let span = if service.starts_with("grpc.") {
            Span::none()
        } else {
            let parent = crate::extract(req.headers());
            self.tracer.start(
                SpanKind::Server,
                &parent,
                || Cow::Owned(path.to_owned()),
                || {
                    [
                        KeyValue::new("rpc.system", "grpc"),
                        KeyValue::new("rpc.service", service.clone()),
                        KeyValue::new("rpc.method", method.clone()),
                    ]
                },
            )
        };
        let active = metrics()
            .rpc_server_active
            .get_or_create(&RpcServiceLabels {
                rpc_service: service.clone(),
            });
        active.inc();
        // The handler runs, and calls out, with the span current.
        let cx = span.context().clone();
        let call = {
            let _attached = cx.clone().attach();
            self.inner.call(req)
        };
        let outcome = Outcome {
            span,
            service,
            method,
            started: Instant::now(),
            done: false,
        };
        Box::pin(
            async move {
                let mut outcome = outcome;
                match call.await {
                    Ok(response) => {
                        if let Some(code) = grpc_status::from_headers(response.headers()) {
                            outcome.finish(code);
                        }
                        let (parts, body) = response.into_parts();
                        let body =
                            grpc_status::watch_trailers(body, move |code| outcome.finish(code));
                        Ok(http::Response::from_parts(parts, body))
                    }
                    Err(e) => {
                        // Unknown: the transport gave up on the call.
                        outcome.finish(2);
                        Err(e)
                    }
                }
            }
            .with_context(cx),
        )
    }
}

/// A call's end, recorded once: metrics, span status, the active gauge.
struct Outcome {
    span: Span,
    service: String,
    method: String,
    started: Instant,
    done: bool,
}

impl Outcome {
    fn finish(&mut self, code: i32) {
        if self.done {
            return;
        }
        self.done = true;
        // Unimplemented: a method the service does not have (a served
        // service's unknown method is as unbounded as an unknown path).
        if code == 12 {
            self.method = OTHER.to_owned();
        }
        let m = metrics();
        m.rpc_server_duration
            .get_or_create(&RpcLabels {
                rpc_service: self.service.clone(),
                rpc_method: self.method.clone(),
                rpc_grpc_status_code: code,
            })
            .observe(self.started.elapsed().as_secs_f64());
        m.rpc_server_active
            .get_or_create(&RpcServiceLabels {
                rpc_service: self.service.clone(),
            })
            .dec();
        self.span
            .set_attributes(|| [KeyValue::new("rpc.grpc.status_code", i64::from(code))]);
        // The RPC conventions: on the server, only the codes that mean the
        // server failed make the span an error.
        if matches!(
            tonic::Code::from_i32(code),
            tonic::Code::Unknown
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unimplemented
                | tonic::Code::Internal
                | tonic::Code::Unavailable
                | tonic::Code::DataLoss
        ) {
            self.span.set_error(grpc_code_name(code));
        }
        // Ends the span now: the body that holds this may live on.
        std::mem::take(&mut self.span).end();
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // The body went away before its trailers: the client cancelled.
        self.finish(1);
    }
}
