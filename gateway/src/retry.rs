//! Calls to a service, retried when that is safe: a GET (idempotent by the
//! HTTP semantics the routes follow) that finds the service Unavailable, or
//! cancelled under it (its connection closed as the replica went away), is
//! sent again within the request's budget. Other methods are sent once: a
//! retry could repeat a write.

use bytes::Bytes;
use http::uri::PathAndQuery;
use std::time::{Duration, Instant};
use suite_grpc::balance::Balanced;
use suite_proto::codec::BytesCodec;
use tonic::{Code, Status};

/// Pauses before the retries: time for the channel to drop the address
/// that failed (see `Balanced::recheck`) before the call goes again.
const RETRY_PAUSES: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(300)];

/// One unary call of `path` with `request`, retried as the module says
/// until `deadline`; each attempt carries what is left as `grpc-timeout`.
pub async fn unary(
    upstream: &Balanced,
    trace: &suite_telemetry::grpc_client::TraceClientLayer,
    request: tonic::Request<Bytes>,
    path: PathAndQuery,
    idempotent: bool,
    deadline: Instant,
) -> Result<tonic::Response<Bytes>, Status> {
    let (metadata, _, body) = request.into_parts();
    let mut pauses = RETRY_PAUSES.iter();
    loop {
        let mut attempt =
            tonic::Request::from_parts(metadata.clone(), tonic::Extensions::new(), body.clone());
        attempt.set_timeout(deadline.saturating_duration_since(Instant::now()));
        // Each attempt is a client span of its own.
        let mut client = tonic::client::Grpc::new(trace.wrap(upstream.channel()));
        let result = async {
            client
                .ready()
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            client.unary(attempt, path.clone(), BytesCodec).await
        }
        .await;
        match result {
            // A Cancelled that is not the budget running out (no retry
            // fits then) is the transport's: the connection went away.
            Err(s) if matches!(s.code(), Code::Unavailable | Code::Cancelled) => {
                // Whatever the method, the channel should look again.
                upstream.recheck();
                match pauses.next() {
                    Some(pause) if idempotent && Instant::now() + *pause < deadline => {
                        tracing::debug!(
                            path = path.as_str(),
                            code = ?s.code(),
                            "retrying: {}",
                            s.message()
                        );
                        tokio::time::sleep(*pause).await;
                    }
                    _ => return Err(s),
                }
            }
            other => return other,
        }
    }
}
