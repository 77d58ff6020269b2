//! Deadline propagation. tonic enforces an incoming `grpc-timeout` on the
//! call it arrives with, but does not carry it on to the calls a handler
//! makes in turn. This layer records the incoming deadline for the duration
//! of the call (a task-local), and [`remaining`] lets any outgoing call set
//! the time that is left as its own timeout.

use std::{
    task::{Context, Poll},
    time::{Duration, Instant},
};

tokio::task_local! {
    static DEADLINE: Instant;
}

/// The time left of the current call's deadline: `None` outside a call or
/// when the caller set none; zero once it has passed.
pub fn remaining() -> Option<Duration> {
    DEADLINE
        .try_with(|d| d.saturating_duration_since(Instant::now()))
        .ok()
}

/// The timeout for an outgoing call: what is left of the incoming deadline,
/// capped by `limit`.
pub fn outgoing_timeout(limit: Duration) -> Duration {
    remaining().map_or(limit, |left| left.min(limit))
}

/// Parses a `grpc-timeout` header value: up to 8 digits and a unit
/// (H, M, S, m, u, n), as the gRPC over HTTP/2 spec defines.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Records each request's `grpc-timeout` as the deadline of its handling.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeadlineLayer;

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Deadline { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for Deadline<S>
where
    S: tower::Service<http::Request<B>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let timeout = req
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_grpc_timeout);
        match timeout.and_then(|t| Instant::now().checked_add(t)) {
            // Both the call (which may do work at once) and its future run in scope.
            Some(deadline) => {
                let fut = DEADLINE.sync_scope(deadline, || self.inner.call(req));
                Box::pin(DEADLINE.scope(deadline, fut))
            }
            None => Box::pin(self.inner.call(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service};

    #[test]
    fn grpc_timeouts_parse_as_the_spec_says() {
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "m", "123456789m", "-1S", "1.5S", "10x", "S1"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad}");
        }
    }

    /// A stand-in for a handler: reports the time it has left.
    #[derive(Clone)]
    struct Report;
    impl Service<http::Request<()>> for Report {
        type Response = Option<Duration>;
        type Error = std::convert::Infallible;
        type Future = std::future::Ready<Result<Option<Duration>, Self::Error>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, _: http::Request<()>) -> Self::Future {
            std::future::ready(Ok(remaining()))
        }
    }

    #[tokio::test]
    async fn a_handler_sees_what_is_left_of_the_incoming_deadline()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut svc = DeadlineLayer.layer(Report);
        let with = http::Request::builder()
            .header("grpc-timeout", "250m")
            .body(())?;
        let left = svc.call(with).await?.ok_or("no deadline seen")?;
        // How much of the budget the call itself took depends on the
        // machine's load: only the bounds are the layer's.
        assert!(
            left <= Duration::from_millis(250) && !left.is_zero(),
            "{left:?}"
        );
        let without = http::Request::builder().body(())?;
        assert_eq!(svc.call(without).await?, None);
        assert_eq!(remaining(), None, "outside a call");
        assert_eq!(
            outgoing_timeout(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
        Ok(())
    }
}
