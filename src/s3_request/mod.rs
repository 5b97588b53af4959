//! Rewrites the client's request into the S3 GetObject/HeadObject request.
//!
//! This is where the client's control over what the proxy's credentials do
//! ends: only an allowlist of headers (`Range` and the conditionals) and of
//! query parameters (`versionId`, `partNumber`, `response-*`) survives, so a
//! client can never turn a GET into `?acl`, `?tagging`, a listing or an upload.
//! The query comes from the request's [`ForwardedQuery`], the same parsed form
//! the cache judged, re-encoded for SigV4.

mod layer;
mod replay;
mod service;

/// Client headers forwarded to S3; every other header is dropped.
pub use crate::headers::CONDITIONAL as FORWARDED_REQUEST_HEADERS;
pub use crate::query::{FORWARDED_QUERY_PARAMS, ForwardedQuery};
use http::HeaderMap;

pub use layer::S3RequestLayer;
pub use replay::replayable_copy;
pub use service::S3Request;

/// Appends to `to` every value of the client headers S3 receives
/// ([`FORWARDED_REQUEST_HEADERS`]), in order.
///
/// Walks the client's headers once comparing names (a plain GET carries a
/// handful and none of them is forwarded) instead of hashing each
/// forwarded name to look it up. A multi-range `Range` is never sent: S3
/// and most S3-compatible stores refuse or ignore it, so it is dropped and
/// S3's whole-object 200 answers it, as RFC 9110 allows (with the cache on,
/// the cache answers multi-ranges itself).
pub(crate) fn copy_forwarded_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if FORWARDED_REQUEST_HEADERS.contains(name) && !is_multi_range(name, value) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// Whether `name: value` is a `Range` asking for more than one range.
fn is_multi_range(name: &http::HeaderName, value: &http::HeaderValue) -> bool {
    name == http::header::RANGE && value.as_bytes().contains(&b',')
}
