//! A response body of unknown length, so that hyper frames it with `Transfer-Encoding: chunked`.
//!
//! PCoIP clients read only chunked responses (reference §1.1, quirk 1). hyper picks chunked
//! framing for an HTTP/1.1 response whose body reports no exact size, which is what this body
//! does, whatever it holds.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// One buffer sent as a chunked body.
#[derive(Debug, Default)]
pub struct ChunkedBody {
    data: Option<Bytes>,
}

impl ChunkedBody {
    /// A body holding `data`.
    pub fn new(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        Self {
            data: (!data.is_empty()).then_some(data),
        }
    }
}

impl Body for ChunkedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn size_hint(&self) -> SizeHint {
        // Deliberately inexact: an exact hint would make hyper send Content-Length.
        SizeHint::default()
    }
}
