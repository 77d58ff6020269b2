//! The server side of every gRPC call: a tower layer that opens the server
//! span (continuing the caller's trace from `traceparent`), counts the call
//! in the RPC metrics, and records its `grpc-status` on both, from the
//! headers of a trailers-only answer or from the trailers.

use crate::{
    grpc_status,
    metrics::{RpcLabels, RpcServiceLabels, metrics},
};
use std::{
    pin::Pin,
    task::{Context, Poll},
    time::Instant,
};
use tonic::body::Body;
use tower::{Layer, Service};
use tracing::Instrument;

#[derive(Debug, Clone, Default)]
pub struct RpcServerLayer;

impl<S> Layer<S> for RpcServerLayer {
    type Service = RpcServer<S>;
    fn layer(&self, inner: S) -> RpcServer<S> {
        RpcServer { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RpcServer<S> {
    inner: S,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, B> Service<http::Request<B>> for RpcServer<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Send,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<http::Response<Body>, S::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().trim_start_matches('/').to_owned();
        let (service, method) = path.split_once('/').unwrap_or((path.as_str(), ""));
        let (service, method) = (service.to_owned(), method.to_owned());
        // Probes and tooling (health, reflection) would be most of the
        // traces and none of the interest: metrics only.
        let quiet = service.starts_with("grpc.");
        let span = if quiet {
            tracing::Span::none()
        } else {
            tracing::info_span!(
            "grpc.server",
            otel.name = %path,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_description = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
            )
        };
        crate::telemetry::continue_trace(&span, req.headers());
        let active = metrics()
            .rpc_server_active
            .get_or_create(&RpcServiceLabels {
                rpc_service: service.clone(),
            });
        active.inc();
        let call = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        let outcome = Outcome {
            span: span.clone(),
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
            .instrument(span),
        )
    }
}

/// A call's end, recorded once: metrics, span status, the active gauge.
struct Outcome {
    span: tracing::Span,
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
        self.span.record("rpc.grpc.status_code", code);
        // The RPC conventions: on the server, only the codes that mean the
        // server failed make the span an error.
        let code = tonic::Code::from_i32(code);
        if matches!(
            code,
            tonic::Code::Unknown
                | tonic::Code::DeadlineExceeded
                | tonic::Code::Unimplemented
                | tonic::Code::Internal
                | tonic::Code::Unavailable
                | tonic::Code::DataLoss
        ) {
            crate::telemetry::set_error(&self.span, &format!("{code:?}"));
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        // The body went away before its trailers: the client cancelled.
        self.finish(1);
    }
}
