//! The one response body type used across the stack.
//!
//! Every layer answers with [`ProxyBody`], so layers compose without generic
//! body gymnastics and the stack is boxed exactly once at the snapshot seam.

mod watch;

pub use watch::{BodyEnd, BodyWatcher, WatchedBody};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};

/// The error type carried by bodies (a boxed, thread-safe error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A streaming response body: S3 bytes, a JSON error or a small local answer.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A body with no bytes (HEAD answers, 304s).
pub fn empty() -> ProxyBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A body made of bytes already in memory (JSON answers, probes).
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// Boxes any body whose error converts into [`BoxError`].
pub fn boxed<B>(body: B) -> ProxyBody
where
    B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}
