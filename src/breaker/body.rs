use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::outcome::Outcome;
use super::state::Permit;
use crate::body::{BoxError, ProxyBody};

/// A response body that tells the breaker how the transfer ended: success
/// at its end, failure on an error mid-body, nothing if the client drops it
/// early (the target did nothing wrong).
#[derive(Debug)]
pub struct ResponseBody {
    inner: ProxyBody,
    permit: Option<Permit>,
}

impl ResponseBody {
    pub(super) fn new(inner: ProxyBody, permit: Permit) -> Self {
        Self {
            inner,
            permit: Some(permit),
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        if let Some(permit) = self.permit.take() {
            permit.finish(outcome);
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            None => this.finish(Outcome::Success),
            Some(Err(_)) => this.finish(Outcome::Failure),
            // A server stops polling once the body says it has ended.
            Some(Ok(_)) if this.inner.is_end_stream() => this.finish(Outcome::Success),
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.finish(Outcome::Success);
        }
        // Otherwise the permit, dropped unreported, says "nothing learnt".
    }
}
