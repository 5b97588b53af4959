//! Answering a GET from an object whose bytes come as the answer streams:
//! a fill under way (a range miss) or slices fetched on demand. The same
//! decisions as [`super::respond`] — `If-Range`, then `Range` — but the
//! body reads the [`Source`] as the client consumes it.
//!
//! Only requests without other preconditions come here (those go to S3
//! unchanged), so there is no 304 or 412 to decide.

use std::ops::Range;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body::{Body, Frame, SizeHint};

use super::multipart::{Layout, new_boundary};
use super::range::{self, ByteRange, RangeDecision};
use super::response::{header_value, replay};
use crate::body::{BoxError, ProxyBody, boxed};
use crate::cache::ObjectMeta;
use crate::error::ProxyError;

/// Bytes of one object, read as they become available.
pub(crate) trait Source: Send + Sync + 'static {
    /// The object's metadata; `content_length` is its whole length.
    fn meta(&self) -> &ObjectMeta;

    /// The bytes of `range` (within the object), in order; an error ends
    /// the body (the client sees an aborted transfer, never wrong bytes).
    fn stream(self: Arc<Self>, range: Range<u64>) -> BoxStream<'static, Result<Bytes, BoxError>>;
}

/// Answers a GET with `headers` from `source`: 200, 206 or 416.
pub(crate) fn respond<S: Source>(
    source: &Arc<S>,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<Response<ProxyBody>, ProxyError> {
    let meta = source.meta();
    let length = meta.content_length;
    if !headers.contains_key(header::RANGE) || !range::if_range_allows(headers, meta) {
        return Ok(whole(source, now));
    }
    match range::decide(headers, length) {
        RangeDecision::Full => Ok(whole(source, now)),
        RangeDecision::Unsatisfiable => Err(ProxyError::RangeNotSatisfiable { length }),
        RangeDecision::Partial(ranges) => match ranges.as_slice() {
            [single] => single_range(source, *single, now),
            several => multiple_ranges(source, several, now),
        },
    }
}

fn whole<S: Source>(source: &Arc<S>, now: SystemTime) -> Response<ProxyBody> {
    let length = source.meta().content_length;
    let body = body_of(source.clone().stream(0..length), length);
    let mut response = Response::new(body);
    *response.headers_mut() = replay(source.meta(), now);
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

fn single_range<S: Source>(
    source: &Arc<S>,
    range: ByteRange,
    now: SystemTime,
) -> Result<Response<ProxyBody>, ProxyError> {
    let total = source.meta().content_length;
    let content_range = format!("bytes {}-{}/{total}", range.first, range.last);
    let stream = source.clone().stream(range.first..range.last + 1);
    let mut response = Response::new(body_of(stream, range.len()));
    *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    let headers = response.headers_mut();
    *headers = replay(source.meta(), now);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.len()));
    headers.insert(header::CONTENT_RANGE, header_value(content_range)?);
    Ok(response)
}

fn multiple_ranges<S: Source>(
    source: &Arc<S>,
    ranges: &[ByteRange],
    now: SystemTime,
) -> Result<Response<ProxyBody>, ProxyError> {
    let mut headers = replay(source.meta(), now);
    let boundary = new_boundary();
    let total = source.meta().content_length;
    let layout = Layout::new(ranges, headers.get(header::CONTENT_TYPE), total, &boundary);
    let mut parts = Vec::with_capacity(ranges.len() * 2 + 1);
    for (head, range) in layout.heads.into_iter().zip(ranges) {
        parts.push(once(head));
        parts.push(source.clone().stream(range.first..range.last + 1));
    }
    parts.push(once(layout.tail));
    let body = body_of(futures_util::stream::iter(parts).flatten(), layout.length);
    headers.insert(
        header::CONTENT_TYPE,
        header_value(format!("multipart/byteranges; boundary={boundary}"))?,
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(layout.length));
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::PARTIAL_CONTENT;
    *response.headers_mut() = headers;
    Ok(response)
}

fn once(bytes: Bytes) -> BoxStream<'static, Result<Bytes, BoxError>> {
    futures_util::stream::once(std::future::ready(Ok(bytes))).boxed()
}

/// A response body of exactly `length` bytes from a stream of chunks.
pub(crate) fn body_of<S>(stream: S, length: u64) -> ProxyBody
where
    S: Stream<Item = Result<Bytes, BoxError>> + Send + 'static,
{
    boxed(StreamedBody {
        stream: Mutex::new(Box::pin(stream)),
        remaining: length,
    })
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// A body over a stream; the `Mutex` only makes it `Sync` (as
/// [`ProxyBody`] needs): it is reached through `get_mut`, never locked.
struct StreamedBody {
    stream: Mutex<ChunkStream>,
    remaining: u64,
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let stream = this.stream.get_mut().unwrap_or_else(|p| p.into_inner());
        match stream.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                this.remaining = this.remaining.saturating_sub(bytes.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
