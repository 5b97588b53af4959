//! A range request (with or without `If-Range`) for an object not cached.
//!
//! Players, `ffmpeg` and download managers send only ranges, so a cache
//! that passed range misses through would never fill for them. Instead the
//! whole object is fetched once (one upstream request for every concurrent
//! request of the key, through the coalescer), the range is answered from
//! it as soon as its bytes have arrived, and the object is stored when
//! complete. The fetch runs in its own task: it completes (bounded by the
//! item limit) even when the client that started it leaves.
//!
//! Whether the object fits the item limit is known from S3's answer
//! (`Content-Length`). When it does not, the answer's head is stored as the
//! object's description (for its TTL), so later ranges of it skip that
//! whole-object request; a single range is then asked of S3 as the client
//! asked it (the whole-object body is dropped unread), and a multi-range
//! request gets S3's whole-object 200 (RFC 9110 §14.2 lets a server ignore
//! `Range`): S3 is never asked for several ranges (AWS does not support
//! it, other stores answer 400). The same goes for answers that cannot be
//! stored.
//!
//! With slicing on, the first request asks S3 for one slice instead of the
//! whole object (`slice/probe.rs`), and ranges of objects over the item
//! limit are answered from slices (`slice/`).

use std::time::SystemTime;

use http::request::Parts;
use http::{Request, Response, StatusCode, header};

use super::coalesce::{Leader, Role, Shared};
use super::fill_span::FillSpan;
use super::growing::{Destination, Growing, pump};
use super::miss::wait;
use super::policy::{self as storage, NotStorable, StoragePolicy};
use super::serve::streamed;
use super::service::{
    BucketPolicy, CacheContext, Inner, Marker, Target, forward, is_fresh, mark, serve,
};
use super::slice::probe::{self, Probe};
use super::slice::{self, SliceSetup, Slicer};
use super::stats::Outcome;
use super::{CacheKey, ObjectMeta};
use crate::body::{ProxyBody, empty};
use crate::config::CacheTierKind;
use crate::error::ProxyError;

type Answer = Result<Response<ProxyBody>, ProxyError>;

/// Answers a range miss: an object known to be larger than the item limit
/// from slices (or S3); else leads the fetch of the whole object, or
/// streams from the fetch already under way.
pub(super) async fn range_miss(
    context: &CacheContext,
    target: Target<'_>,
    inner: Inner,
    request: Request<ProxyBody>,
) -> Answer {
    let Target { policy, key } = target;
    let (parts, _) = request.into_parts();
    let request = RangeRequest {
        context,
        policy,
        key: &key,
        parts: &parts,
    };
    if let Some(meta) = request.described_large().await {
        return request.large(meta, inner, None).await;
    }
    let mut retried = false;
    loop {
        let waiter = match context.store.coalescer.join(&key) {
            Role::Leader(leader) => return request.lead(leader, inner).await,
            Role::Waiter(waiter) => waiter,
        };
        if !retried {
            policy.counters.record_coalesced();
        }
        match wait(context, waiter).await {
            Shared::Filling(growing) => {
                policy.counters.record(Outcome::Miss);
                let answer = streamed::respond(&growing, &parts.headers, SystemTime::now());
                return Ok(mark(answer?, Marker::Miss));
            }
            Shared::Stored(object) => {
                policy.counters.record(Outcome::Miss);
                return serve(&parts, &object, Marker::Miss);
            }
            Shared::Aborted if !retried => retried = true,
            Shared::Aborted | Shared::NotStored => {
                // The leader may have found the object too large.
                let described = request.described_large().await;
                if let Some(meta) = described {
                    return request.large(meta, inner, None).await;
                }
                policy.counters.record(Outcome::Miss);
                let request = single_range_only(Request::from_parts(parts, empty()));
                return Ok(mark(forward(inner, request).await?, Marker::Miss));
            }
        }
    }
}

/// S3's answer to the first request, a slice of a large object.
struct FirstSlice {
    index: u64,
    /// The object's purge epoch before the request.
    epoch: u64,
    response: Response<ProxyBody>,
    /// Concurrent requests for the object, waiting.
    leader: Leader,
}

/// S3's whole-object answer, with what the leader holds.
struct Fetched {
    response: Response<ProxyBody>,
    leader: Leader,
    /// The object's purge epoch before the request.
    epoch: u64,
    now: SystemTime,
}

/// One range request that found no entry.
struct RangeRequest<'a> {
    context: &'a CacheContext,
    policy: &'a BucketPolicy,
    key: &'a CacheKey,
    parts: &'a Parts,
}

impl RangeRequest<'_> {
    /// The leader: fetch the whole object, answer the range while it
    /// arrives. When it is too large, S3's answer head describes it (so
    /// later ranges skip this whole-object request) and it is answered by
    /// [`Self::large`].
    async fn lead(&self, leader: Leader, inner: Inner) -> Answer {
        let (store, policy, key) = (&self.context.store, self.policy, self.key);
        // A fill may have completed between the lookup and joining.
        if let Some(object) = store.memory_get(key).filter(is_fresh) {
            leader.finish(Some(object.clone()));
            policy.counters.record(Outcome::Hit);
            return serve(self.parts, &object, Marker::Hit(CacheTierKind::Memory));
        }
        let epoch = store.epoch_for(key);
        let now = SystemTime::now();
        let response = match self.first_answer(&inner, now).await? {
            Probe::Whole(response) => response,
            Probe::Slice {
                meta,
                index,
                response,
            } => {
                slice::describe(store, key, &meta, epoch);
                let first = FirstSlice {
                    index,
                    epoch,
                    response,
                    leader,
                };
                return self.first_slice(meta, first, inner).await;
            }
            Probe::Refetch => forward(inner.clone(), whole_object(self.parts)).await?,
        };
        let storable =
            storage::storable(response.status(), response.headers(), now, &policy.storage);
        let fetched = Fetched {
            response,
            leader,
            epoch,
            now,
        };
        match storable {
            Ok(meta) => self.fill(meta, fetched),
            Err(reason) => self.not_storable(reason, fetched, inner).await,
        }
    }

    /// Fills the cache from S3's whole-object answer, in a task of its own,
    /// and answers from the object as it arrives.
    fn fill(&self, meta: ObjectMeta, fetched: Fetched) -> Answer {
        self.policy.counters.record(Outcome::Miss);
        let growing = Growing::new(meta);
        fetched.leader.filling(growing.clone());
        let destination = Destination {
            // Made here, in the request's span: the pump runs in a task of its own.
            span: FillSpan::start(&self.context.store, self.key),
            store: self.context.store.clone(),
            key: self.key.clone(),
            epoch: fetched.epoch,
            leader: fetched.leader,
        };
        let body = fetched.response.into_body();
        tokio::spawn(pump(body, growing.clone(), destination));
        let answer = streamed::respond(&growing, &self.parts.headers, fetched.now)?;
        Ok(mark(answer, Marker::Miss))
    }

    /// S3's whole-object answer cannot be stored: too large (described,
    /// then [`Self::large`]), or not storable at all.
    async fn not_storable(&self, reason: NotStorable, fetched: Fetched, inner: Inner) -> Answer {
        let Fetched {
            response,
            leader,
            epoch,
            now,
        } = fetched;
        let unlimited = StoragePolicy {
            max_item_size: u64::MAX,
            ..self.policy.storage
        };
        let (status, headers) = (response.status(), response.headers());
        let large = matches!(reason, NotStorable::TooLarge { .. })
            .then(|| storage::storable(status, headers, now, &unlimited).ok())
            .flatten();
        if let Some(meta) = &large {
            slice::describe(&self.context.store, self.key, meta, epoch);
        }
        leader.finish(None);
        if let Some(meta) = large {
            return self.large(meta, inner, Some(response)).await;
        }
        tracing::debug!(%reason, "range miss: the object is not cached");
        self.policy.counters.record(Outcome::Miss);
        let response = not_stored(response, self.parts, inner).await?;
        Ok(mark(response, Marker::Miss))
    }

    /// S3's answer to the first request: for the slice of the client's
    /// first byte when slicing is on (`slice/probe.rs`), else for the whole
    /// object.
    async fn first_answer(&self, inner: &Inner, now: SystemTime) -> Result<Probe, ProxyError> {
        let size = self.policy.slice_size;
        if size == 0 {
            let response = forward(inner.clone(), whole_object(self.parts)).await?;
            return Ok(Probe::Whole(response));
        }
        let (request, index) = probe::request(self.parts, size);
        match forward(inner.clone(), request).await {
            Ok(response) => Ok(probe::classify(response, index, &self.policy.storage, now)),
            // The first byte lies past the end; other ranges may not.
            Err(ProxyError::S3 { status, .. }) if status == StatusCode::RANGE_NOT_SATISFIABLE => {
                Ok(Probe::Refetch)
            }
            Err(error) => Err(error),
        }
    }

    /// The first request got a slice of an object larger than the item
    /// limit: kept (before the waiters are let go, so they find it), and
    /// the answer read from the slices.
    async fn first_slice(&self, meta: ObjectMeta, first: FirstSlice, inner: Inner) -> Answer {
        let FirstSlice {
            index,
            epoch,
            response,
            leader,
        } = first;
        let setup = SliceSetup {
            context: self.context,
            key: self.key,
            size: self.policy.slice_size,
            counters: &self.policy.counters,
        };
        let Some(slicer) = Slicer::new(setup, meta, inner.clone(), self.parts.clone()) else {
            // No ETag: the object cannot be sliced.
            leader.finish(None);
            drop(response);
            return self.large_unsliced(inner, None).await;
        };
        if let Err(error) = probe::adopt(&slicer, index, epoch, response).await {
            tracing::debug!(%error, "the first slice could not be kept");
        }
        leader.finish(None);
        self.policy.counters.record(Outcome::Miss);
        let answer = streamed::respond(&slicer, &self.parts.headers, SystemTime::now())?;
        Ok(mark(answer, Marker::Miss))
    }

    /// The stored description of the object, when it is larger than this
    /// bucket's item limit.
    async fn described_large(&self) -> Option<ObjectMeta> {
        let meta = slice::described(&self.context.store, self.key).await?;
        (meta.content_length > self.policy.storage.max_item_size).then_some(meta)
    }

    /// An object larger than the item limit: from slices when slicing is
    /// on (and the object has an ETag); else as S3 answers the client's
    /// range (`probe`: S3's whole-object answer, when one is at hand).
    async fn large(
        &self,
        meta: ObjectMeta,
        inner: Inner,
        probe: Option<Response<ProxyBody>>,
    ) -> Answer {
        if let Some(answer) = self.sliced(&inner, meta) {
            return answer;
        }
        self.large_unsliced(inner, probe).await
    }

    /// An object larger than the item limit, not sliced: the client's
    /// range as S3 answers it.
    async fn large_unsliced(&self, inner: Inner, probe: Option<Response<ProxyBody>>) -> Answer {
        self.policy.counters.record(Outcome::Miss);
        let response = match probe {
            Some(probe) => not_stored(probe, self.parts, inner).await?,
            None => {
                let request = Request::from_parts(self.parts.clone(), empty());
                forward(inner, single_range_only(request)).await?
            }
        };
        Ok(mark(response, Marker::Miss))
    }

    /// Answers from slices when slicing is on; `None` otherwise.
    fn sliced(&self, inner: &Inner, meta: ObjectMeta) -> Option<Answer> {
        let size = self.policy.slice_size;
        if size == 0 {
            return None;
        }
        let setup = SliceSetup {
            context: self.context,
            key: self.key,
            size,
            counters: &self.policy.counters,
        };
        let slicer = Slicer::new(setup, meta, inner.clone(), self.parts.clone())?;
        let headers = &self.parts.headers;
        let (outcome, marker) = if slicer.cached_in_memory(headers) {
            (Outcome::Hit, Marker::Hit(CacheTierKind::Memory))
        } else {
            (Outcome::Miss, Marker::Miss)
        };
        self.policy.counters.record(outcome);
        let answer = streamed::respond(&slicer, headers, SystemTime::now());
        Some(answer.map(|response| mark(response, marker)))
    }
}

/// S3's whole-object answer cannot be stored (too large, `no-store`, not
/// 200): an error or a multi-range request gets it as it is; a single
/// range is asked of S3 as the client asked it.
async fn not_stored(response: Response<ProxyBody>, parts: &Parts, inner: Inner) -> Answer {
    if response.status() != StatusCode::OK || is_multi_range(&parts.headers) {
        return Ok(response);
    }
    // Dropping the body closes that upstream connection after its head.
    drop(response);
    forward(inner, Request::from_parts(parts.clone(), empty())).await
}

/// The request for the whole object: the client's without `Range` and `If-Range`.
fn whole_object(parts: &Parts) -> Request<ProxyBody> {
    let mut request = Request::from_parts(parts.clone(), empty());
    request.headers_mut().remove(header::RANGE);
    request.headers_mut().remove(header::IF_RANGE);
    request
}

/// Whether `Range` asks for several ranges (a comma in the set).
pub(super) fn is_multi_range(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::RANGE)
        .iter()
        .enumerate()
        .any(|(index, value)| index > 0 || value.as_bytes().contains(&b','))
}

/// `request` as S3 may receive it: a multi-range request loses its
/// `Range` (and `If-Range`), so S3 answers the whole object (200), which
/// RFC 9110 allows in place of several ranges.
pub(super) fn single_range_only(mut request: Request<ProxyBody>) -> Request<ProxyBody> {
    if is_multi_range(request.headers()) {
        request.headers_mut().remove(header::RANGE);
        request.headers_mut().remove(header::IF_RANGE);
    }
    request
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn with_range(values: &[&str]) -> Request<ProxyBody> {
        let mut request = Request::new(empty());
        for value in values {
            request
                .headers_mut()
                .append(header::RANGE, HeaderValue::from_str(value).unwrap());
        }
        request
            .headers_mut()
            .insert(header::IF_RANGE, HeaderValue::from_static("\"e\""));
        request
    }

    #[test]
    fn only_single_ranges_reach_s3() {
        let single = single_range_only(with_range(&["bytes=0-9"]));
        assert_eq!(single.headers()[header::RANGE], "bytes=0-9");
        assert!(single.headers().contains_key(header::IF_RANGE));
        for several in [&["bytes=0-1,5-6"][..], &["bytes=0-1", "bytes=5-6"]] {
            let request = single_range_only(with_range(several));
            assert!(
                !request.headers().contains_key(header::RANGE),
                "{several:?}"
            );
            assert!(!request.headers().contains_key(header::IF_RANGE));
        }
    }
}
