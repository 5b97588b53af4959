//! The first request for an object not yet known, when slicing is on.
//!
//! Asking S3 for the whole object to learn its size would, for a large
//! one, send bytes the proxy then drops (as many as the connection buffers
//! before it closes). With slicing on, the first request asks instead for
//! the slice holding the client's first byte; S3's `206` tells the object's
//! length and version, and:
//! - an object no larger than that slice comes whole (`bytes 0-(n-1)/n`):
//!   it is filled like a `200`;
//! - an object larger than the item limit is described, and the answer is
//!   kept as that slice;
//! - an object between the two needs a second, whole-object request (the
//!   slice is dropped: at most one slice of waste, once per object).

use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};

use super::{Slicer, fetch, keys};
use crate::body::{ProxyBody, empty};
use crate::cache::fill_span::FillSpan;
use crate::cache::policy::{self as storage, StoragePolicy};
use crate::cache::{CacheKey, ObjectMeta};
use crate::headers::CONDITIONAL;

/// What S3's answer to the first request turned out to be.
pub(crate) enum Probe {
    /// The whole object, as a `200` (a `206` covering all of it is
    /// rewritten as one): filled as usual.
    Whole(Response<ProxyBody>),
    /// Slice `index` of an object larger than the item limit, which `meta`
    /// describes (`content_length`: the whole object's).
    Slice {
        meta: ObjectMeta,
        index: u64,
        response: Response<ProxyBody>,
    },
    /// Neither: the whole object must be asked for.
    Refetch,
}

/// The client's request without its conditions, asking for the slice
/// (of `size` bytes) that holds the first byte its `Range` asks for.
pub(crate) fn request(parts: &http::request::Parts, size: u64) -> (Request<ProxyBody>, u64) {
    let index = first_byte(&parts.headers).unwrap_or(0) / size;
    let mut request = Request::from_parts(parts.clone(), empty());
    let headers = request.headers_mut();
    for name in &CONDITIONAL {
        headers.remove(name);
    }
    let first = index * size;
    let range = format!("bytes={first}-{}", first + size - 1);
    if let Ok(value) = HeaderValue::from_str(&range) {
        headers.insert(header::RANGE, value);
    }
    (request, index)
}

/// The first byte of the first range-spec, when it names one (`N-` or
/// `N-M`; a suffix range names none before the length is known).
fn first_byte(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    let (_, set) = value.split_once('=')?;
    let spec = set.split(',').map(str::trim).find(|s| !s.is_empty())?;
    let (first, _) = spec.split_once('-')?;
    first.trim().parse().ok()
}

/// Sorts S3's answer to the slice request for slice `index`.
pub(crate) fn classify(
    mut response: Response<ProxyBody>,
    index: u64,
    policy: &StoragePolicy,
    now: SystemTime,
) -> Probe {
    if response.status() != StatusCode::PARTIAL_CONTENT {
        return Probe::Whole(response);
    }
    let Some((first, last, total)) = content_range(response.headers()) else {
        return Probe::Refetch;
    };
    if first == 0 && last.checked_add(1) == Some(total) {
        *response.status_mut() = StatusCode::OK;
        response.headers_mut().remove(header::CONTENT_RANGE);
        return Probe::Whole(response);
    }
    if total <= policy.max_item_size {
        return Probe::Refetch;
    }
    // The object's own head: the 206's headers with its length.
    let mut headers = response.headers().clone();
    headers.remove(header::CONTENT_RANGE);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    let unlimited = StoragePolicy {
        max_item_size: u64::MAX,
        ..*policy
    };
    match storage::storable(StatusCode::OK, &headers, now, &unlimited) {
        Ok(meta) => Probe::Slice {
            meta,
            index,
            response,
        },
        Err(_) => Probe::Refetch,
    }
}

/// `Content-Range: bytes first-last/total`.
fn content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?, total.parse().ok()?))
}

/// Keeps the probe's answer as slice `index` of `slicer`'s object.
pub(crate) async fn adopt(
    slicer: &Arc<Slicer>,
    index: u64,
    epoch: u64,
    response: Response<ProxyBody>,
) -> Result<(), fetch::SliceError> {
    let key: CacheKey = keys::slice(&slicer.key, slicer.size, &slicer.etag, index);
    slicer.counters.record_slice(false);
    let span = FillSpan::slice(&slicer.trace, &slicer.store, &key, index);
    let (object, stored) = fetch::accept(slicer, index, &key, epoch, response).await?;
    span.stored(object.body.len(), stored);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn parts(range: &str) -> http::request::Parts {
        let mut request = Request::new(());
        request
            .headers_mut()
            .insert(header::RANGE, HeaderValue::from_str(range).unwrap());
        request
            .headers_mut()
            .insert(header::IF_RANGE, HeaderValue::from_static("\"e\""));
        request.into_parts().0
    }

    #[test]
    fn the_probe_asks_for_the_slice_of_the_first_byte() {
        for (range, index, asked) in [
            ("bytes=0-99", 0, "bytes=0-9"),
            ("bytes=25-", 2, "bytes=20-29"),
            ("bytes=-5", 0, "bytes=0-9"),
            ("bytes=31-32,0-1", 3, "bytes=30-39"),
        ] {
            let (request, got) = request(&parts(range), 10);
            assert_eq!(got, index, "{range}");
            assert_eq!(request.headers()[header::RANGE], asked, "{range}");
            assert!(!request.headers().contains_key(header::IF_RANGE));
        }
    }

    fn answer(status: u16, content_range: Option<&str>, length: u64) -> Response<ProxyBody> {
        let mut response = Response::new(empty());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        headers.insert(header::ETAG, HeaderValue::from_static("\"e\""));
        if let Some(range) = content_range {
            headers.insert(header::CONTENT_RANGE, HeaderValue::from_str(range).unwrap());
        }
        response
    }

    #[test]
    fn the_answer_says_whole_slice_or_refetch() {
        let policy = StoragePolicy {
            ttl: Duration::from_secs(60),
            max_item_size: 100,
        };
        let now = SystemTime::now();
        let sort = |response| classify(response, 0, &policy, now);
        assert!(matches!(sort(answer(200, None, 50)), Probe::Whole(_)));
        match sort(answer(206, Some("bytes 0-4/5"), 5)) {
            Probe::Whole(r) => {
                assert_eq!(r.status(), StatusCode::OK);
                assert!(!r.headers().contains_key(header::CONTENT_RANGE));
            }
            _ => panic!("a 206 of the whole object is the whole object"),
        }
        assert!(matches!(
            sort(answer(206, Some("bytes 0-9/50"), 10)),
            Probe::Refetch
        ));
        match sort(answer(206, Some("bytes 0-9/500"), 10)) {
            Probe::Slice { meta, .. } => {
                assert_eq!(meta.content_length, 500);
                assert_eq!(meta.etag.as_deref(), Some("\"e\""));
            }
            _ => panic!("a slice of a large object"),
        }
        assert!(matches!(sort(answer(206, None, 10)), Probe::Refetch));
    }
}
