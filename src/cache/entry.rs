//! What the cache stores: one complete 200 response, ready to replay.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::HeaderMap;

/// A cached object: shared metadata plus the body bytes.
///
/// Cloning is cheap (an `Arc` and a `Bytes`), so a memory hit never copies
/// the payload.
#[derive(Debug, Clone)]
pub struct CachedObject {
    /// Headers and validators.
    pub meta: Arc<ObjectMeta>,
    /// The complete body; its length equals `meta.content_length`.
    pub body: Bytes,
}

/// Everything needed to replay the response and judge its freshness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The replayable response headers (Content-Type, ETag, Last-Modified,
    /// Cache-Control, Content-Disposition, Content-Encoding,
    /// Content-Language, Expires, x-amz-meta-*, x-amz-version-id).
    pub headers: HeaderMap,
    /// The body length.
    pub content_length: u64,
    /// The `ETag` as S3 sent it (quotes included), for conditional requests.
    pub etag: Option<String>,
    /// `Last-Modified`, for `If-Modified-Since` / `If-Unmodified-Since`.
    pub last_modified: Option<SystemTime>,
    /// When the entry was stored or last revalidated.
    pub stored_at: SystemTime,
    /// Until when the entry is served without revalidation.
    pub fresh_until: SystemTime,
}
