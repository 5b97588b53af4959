//! Answering a GET or HEAD from a cached object: preconditions (RFC 9110
//! §13), ranges (§14) and the response itself.
//!
//! Pure functions of the cached object, the request's method and headers,
//! and the clock: the cache layer calls [`respond`] on a hit and adds its
//! `X-Cache` marker to what comes back. Every success carries
//! `Accept-Ranges: bytes` and `Age` (seconds since the entry was stored or
//! last revalidated); a 412 or 416 comes back as the matching
//! [`ProxyError`], which renders it (416 with `Content-Range: bytes */len`).
//!
//! Order: preconditions first (412 / 304), then, for GET only, `If-Range`
//! and `Range` (HEAD ignores `Range`, as RFC 9110 §14.2 defines ranges for
//! GET alone).

pub mod conditional;
pub mod etag;
pub mod multipart;
pub mod range;
pub mod response;
pub(crate) mod streamed;

use std::time::SystemTime;

use http::{HeaderMap, Method, Response, header};

use self::conditional::Precondition;
use self::range::RangeDecision;
use super::CachedObject;
use crate::body::ProxyBody;
use crate::error::ProxyError;

/// Answers `method` (GET or HEAD) with `headers` from `object`.
///
/// A full GET shares the cached `Bytes`; ranges are slices of it.
pub fn respond(
    object: &CachedObject,
    method: &Method,
    headers: &HeaderMap,
    now: SystemTime,
) -> Result<Response<ProxyBody>, ProxyError> {
    let head = match *method {
        Method::GET => false,
        Method::HEAD => true,
        _ => return Err(ProxyError::MethodNotAllowed(method.clone())),
    };
    match conditional::evaluate(method, headers, &object.meta) {
        Precondition::Failed => return Err(ProxyError::PreconditionFailed),
        Precondition::NotModified => return Ok(response::not_modified(&object.meta, now)),
        Precondition::Proceed => {}
    }
    if head
        || !headers.contains_key(header::RANGE)
        || !range::if_range_allows(headers, &object.meta)
    {
        return Ok(response::whole(object, head, now));
    }
    let length = object.body.len() as u64;
    match range::decide(headers, length) {
        RangeDecision::Full => Ok(response::whole(object, false, now)),
        RangeDecision::Unsatisfiable => Err(ProxyError::RangeNotSatisfiable { length }),
        RangeDecision::Partial(ranges) => match ranges.as_slice() {
            [single] => response::single_range(object, *single, now),
            several => response::multiple_ranges(object, several, now),
        },
    }
}

#[cfg(test)]
mod tests;
