use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body::{Body, Frame, SizeHint};

use super::service::Exchange;
use crate::body::{BoxError, ProxyBody};

/// A response body that keeps a copy of its first `max_body_size` bytes and
/// writes the response line once it has them, or once the body ends (sent
/// in full, failed or dropped). The bytes stream on unchanged.
pub struct CapturedBody {
    inner: ProxyBody,
    line: Option<Line>,
}

/// The response line, waiting for its body bytes.
struct Line {
    exchange: Exchange,
    status: StatusCode,
    latency: Duration,
    headers: Vec<String>,
    captured: Vec<u8>,
    /// The capture is full: the next frame tells whether more followed.
    full: bool,
}

impl std::fmt::Debug for CapturedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CapturedBody")
            .field("pending", &self.line.is_some())
            .finish_non_exhaustive()
    }
}

impl CapturedBody {
    pub(super) fn wrap(
        inner: ProxyBody,
        exchange: Exchange,
        status: StatusCode,
        latency: Duration,
        headers: Vec<String>,
    ) -> ProxyBody {
        let mut body = Self {
            inner,
            line: Some(Line {
                exchange,
                status,
                latency,
                headers,
                captured: Vec::new(),
                full: false,
            }),
        };
        if body.inner.is_end_stream() {
            body.write(false);
        }
        crate::body::boxed(body)
    }

    /// Writes the line (once) with what was captured.
    fn write(&mut self, truncated: bool) {
        if let Some(line) = self.line.take() {
            let text = String::from_utf8_lossy(&line.captured);
            line.exchange.log_response(
                line.status,
                line.latency,
                &line.headers,
                Some((&text, truncated)),
            );
        }
    }

    /// Copies what `data` brings within the limit; writes the line when the
    /// capture is complete.
    fn capture(&mut self, data: &Bytes) {
        let Some(line) = &mut self.line else {
            return;
        };
        if data.is_empty() {
            return;
        }
        if line.full {
            return self.write(true);
        }
        let max = line.exchange.max_body_size();
        let take = data.len().min(max - line.captured.len());
        line.captured.extend_from_slice(&data[..take]);
        if take < data.len() {
            self.write(true);
        } else if line.captured.len() == max {
            line.full = true;
            if self.inner.is_end_stream() {
                self.write(false);
            }
        }
    }
}

impl Body for CapturedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.capture(data);
                }
                if this.inner.is_end_stream() {
                    this.write(false);
                }
            }
            // Failed mid-stream: the access log says so; this line shows
            // what was sent.
            Some(Err(_)) => this.write(true),
            None => this.write(false),
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CapturedBody {
    fn drop(&mut self) {
        // The client went away before the capture was complete.
        self.write(true);
    }
}
