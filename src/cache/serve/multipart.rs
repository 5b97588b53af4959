//! `multipart/byteranges` bodies (RFC 9110 §14.6) assembled from slices of
//! the cached `Bytes`: the part headers are small new buffers, the payload
//! is never copied.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use http_body::{Body, Frame, SizeHint};

use super::range::ByteRange;

/// A `multipart/byteranges` payload as a list of chunks.
#[derive(Debug)]
pub struct Multipart {
    boundary: String,
    chunks: Vec<Bytes>,
    length: u64,
}

/// A fresh boundary: 32 random hex digits (128 bits), so it cannot occur
/// in the payload except by a negligible chance.
pub fn new_boundary() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Multipart {
    /// Builds the parts for `ranges` of `body` (each range within it).
    ///
    /// `content_type` is the object's, repeated in every part when known.
    pub fn new(
        body: &Bytes,
        ranges: &[ByteRange],
        content_type: Option<&HeaderValue>,
        boundary: String,
    ) -> Self {
        let layout = Layout::new(ranges, content_type, body.len() as u64, &boundary);
        let mut chunks = Vec::with_capacity(ranges.len() * 2 + 1);
        for (head, range) in layout.heads.into_iter().zip(ranges) {
            chunks.push(head);
            chunks.push(body.slice(range.as_index()));
        }
        chunks.push(layout.tail);
        Self {
            boundary,
            chunks,
            length: layout.length,
        }
    }

    /// The response's `Content-Type`: `multipart/byteranges; boundary=…`.
    pub fn content_type(&self) -> String {
        format!("multipart/byteranges; boundary={}", self.boundary)
    }

    /// The exact payload length (the response's `Content-Length`).
    pub fn len(&self) -> u64 {
        self.length
    }

    /// Never true: there is always at least the closing delimiter.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The payload as a body that yields the chunks one by one (no copy).
    pub fn into_chunks(self) -> Chunks {
        Chunks {
            chunks: self.chunks.into_iter(),
            remaining: self.length,
        }
    }

    /// The payload copied into one buffer: the alternative to
    /// [`Multipart::into_chunks`] that `benches/cache_serve.rs` measures
    /// (chunks tie for tiny parts and win for larger ones, so responses use chunks).
    pub fn into_contiguous(self) -> Bytes {
        let mut buffer = BytesMut::with_capacity(self.length as usize);
        for chunk in &self.chunks {
            buffer.extend_from_slice(chunk);
        }
        buffer.freeze()
    }
}

/// The delimiters and part headers of a `multipart/byteranges` payload,
/// without the parts' bytes: what an answer needs before the bytes arrive
/// (a range miss streams the parts as the object is fetched).
#[derive(Debug)]
pub struct Layout {
    /// What precedes each range's bytes (delimiter and part headers).
    pub heads: Vec<Bytes>,
    /// The closing delimiter.
    pub tail: Bytes,
    /// The whole payload's length, the ranges' bytes included.
    pub length: u64,
}

impl Layout {
    /// The layout for `ranges` of an object of `total` bytes.
    pub fn new(
        ranges: &[ByteRange],
        content_type: Option<&HeaderValue>,
        total: u64,
        boundary: &str,
    ) -> Self {
        let mut heads = Vec::with_capacity(ranges.len());
        let mut length = 0u64;
        for (index, range) in ranges.iter().enumerate() {
            let mut head = BytesMut::with_capacity(96 + boundary.len());
            if index > 0 {
                head.extend_from_slice(b"\r\n");
            }
            head.extend_from_slice(b"--");
            head.extend_from_slice(boundary.as_bytes());
            if let Some(content_type) = content_type {
                head.extend_from_slice(b"\r\nContent-Type: ");
                head.extend_from_slice(content_type.as_bytes());
            }
            // Writing into a BytesMut cannot fail.
            let _ = write!(
                head,
                "\r\nContent-Range: bytes {}-{}/{total}\r\n\r\n",
                range.first, range.last
            );
            length += head.len() as u64 + range.len();
            heads.push(head.freeze());
        }
        let mut tail = BytesMut::with_capacity(boundary.len() + 8);
        tail.extend_from_slice(b"\r\n--");
        tail.extend_from_slice(boundary.as_bytes());
        tail.extend_from_slice(b"--\r\n");
        length += tail.len() as u64;
        Self {
            heads,
            tail: tail.freeze(),
            length,
        }
    }
}

/// A body of `Bytes` chunks already in memory, with an exact size hint.
#[derive(Debug)]
pub struct Chunks {
    chunks: std::vec::IntoIter<Bytes>,
    remaining: u64,
}

impl Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.chunks.next().map(|chunk| {
            this.remaining -= chunk.len() as u64;
            Ok(Frame::data(chunk))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.chunks.len() == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
