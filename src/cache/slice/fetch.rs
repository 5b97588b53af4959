//! One slice: from a tier, or fetched with its own range request
//! (coalesced per slice), checked against the object's version, stored.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;

use super::{Slicer, keys};
use crate::body::{ProxyBody, empty};
use crate::cache::coalesce::{Leader, Role, Shared};
use crate::cache::fill_span::FillSpan;
use crate::cache::service::forward;
use crate::cache::{CacheKey, CachedObject, ObjectMeta};
use crate::error::ProxyError;
use crate::headers::CONDITIONAL;

/// Why a slice could not be had; the answer reading it breaks off.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SliceError {
    /// S3 now has another version of the object than its description
    /// (or none, or refuses it).
    #[error("the object changed while its slices were read")]
    Changed,
    /// S3 failed or answered something else than the slice.
    #[error("a slice could not be fetched: {0}")]
    Upstream(String),
}

/// The bytes of slice `index` of `slicer`'s object.
pub(super) async fn slice(slicer: &Arc<Slicer>, index: u64) -> Result<Bytes, SliceError> {
    let key = keys::slice(&slicer.key, slicer.size, &slicer.etag, index);
    let expected = slicer.slice_len(index);
    // Any entry of this version will do: its bytes never change.
    if let Some(found) = slicer.store.lookup(&key).await
        && found.object.body.len() as u64 == expected
    {
        slicer.counters.record_slice(true);
        return Ok(found.object.body);
    }
    slicer.counters.record_slice(false);
    let mut retried = false;
    loop {
        let waiter = match slicer.store.coalescer.join(&key) {
            Role::Leader(leader) => return lead(slicer, index, key, leader).await,
            Role::Waiter(waiter) => waiter,
        };
        let outcome = tokio::time::timeout(slicer.coalesce_wait, waiter.outcome()).await;
        match outcome.unwrap_or(Shared::NotStored) {
            Shared::Stored(object) if object.body.len() as u64 == expected => {
                return Ok(object.body);
            }
            Shared::Aborted if !retried => retried = true,
            _ => return spawn_fetch(slicer, index, key, None).await,
        }
    }
}

/// Fetches slice `index` for everyone waiting on `leader`, unless it was
/// stored between the lookup and taking the lead (the previous leader
/// finished in between): then no second request goes to S3.
pub(super) async fn lead(
    slicer: &Arc<Slicer>,
    index: u64,
    key: CacheKey,
    leader: Leader,
) -> Result<Bytes, SliceError> {
    let expected = slicer.slice_len(index);
    let stored = (slicer.store.memory_get(&key)).filter(|o| o.body.len() as u64 == expected);
    if let Some(object) = stored {
        leader.finish(Some(object.clone()));
        return Ok(object.body);
    }
    let span = FillSpan::slice(&slicer.trace, &slicer.store, &key, index);
    spawn_fetch(slicer, index, key, Some((leader, span))).await
}

/// Fetches in a task of its own: a client that goes away mid-slice does
/// not abort the fetch other readers of the slice wait for.
async fn spawn_fetch(
    slicer: &Arc<Slicer>,
    index: u64,
    key: CacheKey,
    leader: Option<(Leader, FillSpan)>,
) -> Result<Bytes, SliceError> {
    let task = tokio::spawn(fetch(slicer.clone(), index, key, leader));
    task.await
        .unwrap_or_else(|error| Err(SliceError::Upstream(error.to_string())))
}

/// Fetches slice `index`; a leader hands it to its waiters and ends its
/// fill span.
async fn fetch(
    slicer: Arc<Slicer>,
    index: u64,
    key: CacheKey,
    leader: Option<(Leader, FillSpan)>,
) -> Result<Bytes, SliceError> {
    let store = &slicer.store;
    let epoch = store.epoch_for(&key);
    let first = index * slicer.size;
    let length = slicer.slice_len(index);
    let request = slice_request(&slicer, first, first + length - 1);
    let response = match forward(slicer.inner.clone(), request).await {
        Ok(response) => response,
        // 412: another version; 404/403: gone or refused now; 416: shorter.
        // The description is wrong either way (as a revalidation would find).
        Err(ProxyError::S3 { status, .. }) if status.is_client_error() => {
            return Err(changed(&slicer));
        }
        Err(error) => return Err(SliceError::Upstream(error.to_string())),
    };
    let (object, stored) = accept(&slicer, index, &key, epoch, response).await?;
    if let Some((leader, span)) = leader {
        span.stored(object.body.len(), stored);
        leader.finish(stored.then(|| object.clone()));
    }
    Ok(object.body)
}

/// Checks S3's answer for slice `index`, reads it and stores it under
/// `key` unless a purge happened since `epoch`; the slice and whether it
/// was stored.
pub(super) async fn accept(
    slicer: &Arc<Slicer>,
    index: u64,
    key: &CacheKey,
    epoch: u64,
    response: Response<ProxyBody>,
) -> Result<(CachedObject, bool), SliceError> {
    let first = index * slicer.size;
    let length = slicer.slice_len(index);
    check(slicer, &response, first, length)?;
    let body = read_body(response.into_body(), length).await?;
    let object = CachedObject {
        meta: Arc::new(ObjectMeta {
            headers: http::HeaderMap::new(),
            content_length: length,
            etag: Some(slicer.etag.clone()),
            last_modified: slicer.meta.last_modified,
            stored_at: SystemTime::now(),
            fresh_until: slicer.meta.fresh_until,
        }),
        body,
    };
    let stored = slicer.store.insert(key, &object, epoch);
    Ok((object, stored))
}

/// The slice's bytes: exactly `length` of them, or an error.
async fn read_body(mut body: ProxyBody, length: u64) -> Result<Bytes, SliceError> {
    let mut buffer = BytesMut::with_capacity(length as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| SliceError::Upstream(error.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if (buffer.len() + data.len()) as u64 > length {
                return Err(SliceError::Upstream("the slice's body was too long".into()));
            }
            buffer.extend_from_slice(&data);
        }
    }
    if buffer.len() as u64 != length {
        return Err(SliceError::Upstream("the slice's body was short".into()));
    }
    Ok(buffer.freeze())
}

/// The client's request for the object, asking for bytes `first..=last`
/// of the version the slicer reads (S3 answers 412 for another one).
fn slice_request(slicer: &Slicer, first: u64, last: u64) -> Request<ProxyBody> {
    let mut request = Request::from_parts(slicer.parts.clone(), empty());
    let headers = request.headers_mut();
    for name in &CONDITIONAL {
        headers.remove(name);
    }
    // Digits, '-' and '=': always a valid header value.
    if let Ok(range) = HeaderValue::from_str(&format!("bytes={first}-{last}")) {
        headers.insert(header::RANGE, range);
    }
    if let Ok(etag) = HeaderValue::from_str(&slicer.etag) {
        headers.insert(header::IF_MATCH, etag);
    }
    request
}

/// Whether `response` is exactly the asked slice of the slicer's version;
/// another ETag or total length means the object changed (not every store
/// honours `If-Match`).
fn check(
    slicer: &Arc<Slicer>,
    response: &Response<ProxyBody>,
    first: u64,
    length: u64,
) -> Result<(), SliceError> {
    let headers = response.headers();
    let etag = headers.get(header::ETAG).and_then(|v| v.to_str().ok());
    let expected_range = format!(
        "bytes {first}-{}/{}",
        first + length - 1,
        slicer.meta.content_length
    );
    let content_range = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok());
    if etag.map(str::trim) != Some(slicer.etag.trim()) {
        return Err(changed(slicer));
    }
    if response.status() != StatusCode::PARTIAL_CONTENT
        || content_range.map(str::trim) != Some(expected_range.as_str())
    {
        // Same ETag, another length or no range: the object is not what
        // its description says either.
        return Err(changed(slicer));
    }
    Ok(())
}

/// Reports a changed object: its description and slices are dropped.
fn changed(slicer: &Arc<Slicer>) -> SliceError {
    tracing::info!(
        object = %slicer.key.object,
        "the object changed between slices; the answer is aborted and its slices dropped"
    );
    slicer.forget_version();
    SliceError::Changed
}
