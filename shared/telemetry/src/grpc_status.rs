//! Where a gRPC call's status is: in the headers of a trailers-only answer,
//! else in the trailers at the end of the body. Shared by the server and
//! client layers that record it on spans and metrics.

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::{
    pin::Pin,
    task::{Context, Poll},
};
use tonic::body::Body;

/// The `grpc-status` of a header (or trailer) map.
pub fn from_headers(headers: &http::HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

/// `body`, calling `on_status` with the code in its trailers when they pass.
/// `on_status` is dropped with the body, whether or not trailers came.
pub fn watch_trailers<F>(body: Body, on_status: F) -> Body
where
    F: FnMut(i32) + Send + Unpin + 'static,
{
    Body::new(WatchTrailers {
        inner: body,
        on_status,
    })
}

struct WatchTrailers<F> {
    inner: Body,
    on_status: F,
}

impl<F: FnMut(i32) + Send + Unpin + 'static> HttpBody for WatchTrailers<F> {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(code) = frame.trailers_ref().and_then(from_headers)
        {
            (this.on_status)(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
