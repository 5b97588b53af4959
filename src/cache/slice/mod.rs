//! Objects larger than the item limit, cached in fixed-size slices (the
//! idea of nginx's slice module).
//!
//! A range of such an object is answered from the slices it touches, in
//! order, as the client reads: a slice in a tier is used at once; a missing
//! one is fetched with its own upstream range request aligned to slice
//! boundaries (`Range: bytes=i*size-…`, `If-Match: <etag>`), coalesced with
//! concurrent requests for the same slice, and stored like an object. A
//! client that stops reading (a player seeking elsewhere) stops the fetches.
//!
//! What a slice belongs to is pinned: the object's *description* (its
//! headers, ETag and length, learned from S3's answer to the first fetch)
//! is stored with the object's TTL, and every slice is keyed with the
//! description's ETag (`keys.rs`). Each fetched slice must come back as
//! exactly the asked range of an object of that ETag and length; when it
//! does not (or S3 answers `412` to the `If-Match`), the object changed:
//! the answer breaks off with an error (the client sees an aborted
//! transfer, never bytes of two versions), and the description and the
//! stale version's slices are dropped, so the next request starts afresh.

mod fetch;
mod keys;
pub(crate) mod probe;

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use http::HeaderMap;
use http::request::Parts;

use self::fetch::slice;
use super::service::{CacheContext, Inner, is_fresh};
use super::stats::BucketCounters;
use super::store::Store;
use super::{CacheKey, CachedObject, ObjectMeta, PurgeScope};
use crate::body::BoxError;
use crate::cache::serve::range::{self, RangeDecision};
use crate::cache::serve::streamed::Source;

/// One answer's view of a sliced object: where its slices are, how to fetch
/// the missing ones, and the version they must all belong to.
#[derive(Debug)]
pub(crate) struct Slicer {
    store: Arc<Store>,
    inner: Inner,
    /// The client's request, the model of each slice's upstream request.
    parts: Parts,
    /// The object's own key.
    key: CacheKey,
    /// The object's description (`content_length`: the whole object's).
    meta: ObjectMeta,
    /// The version every slice must belong to.
    etag: String,
    size: u64,
    counters: Arc<BucketCounters>,
    coalesce_wait: Duration,
    /// The span of the request the slicer answers, when it is traced: the
    /// parent of its slices' fill spans.
    trace: tracing::Span,
}

/// What [`Slicer::new`] needs besides the request.
pub(crate) struct SliceSetup<'a> {
    pub(crate) context: &'a CacheContext,
    pub(crate) key: &'a CacheKey,
    pub(crate) size: u64,
    pub(crate) counters: &'a Arc<BucketCounters>,
}

impl Slicer {
    /// A slicer for the object `meta` describes; `None` without an ETag
    /// (nothing would tell its versions apart).
    pub(crate) fn new(
        setup: SliceSetup<'_>,
        meta: ObjectMeta,
        inner: Inner,
        parts: Parts,
    ) -> Option<Arc<Self>> {
        let etag = meta.etag.clone()?;
        Some(Arc::new(Self {
            store: setup.context.store.clone(),
            inner,
            parts,
            key: setup.key.clone(),
            meta,
            etag,
            size: setup.size,
            counters: setup.counters.clone(),
            coalesce_wait: setup.context.coalesce_wait,
            trace: if crate::telemetry::otel::in_trace() {
                tracing::Span::current()
            } else {
                tracing::Span::none()
            },
        }))
    }

    /// How many bytes slice `index` holds (the last one may be shorter).
    fn slice_len(&self, index: u64) -> u64 {
        let first = index.saturating_mul(self.size);
        self.size
            .min(self.meta.content_length.saturating_sub(first))
    }

    /// Whether every slice the answer to `headers` reads is in the memory
    /// tier (the answer is then a hit; no upstream request will be made).
    pub(crate) fn cached_in_memory(&self, headers: &HeaderMap) -> bool {
        let length = self.meta.content_length;
        // (first, end) pairs, end exclusive.
        let spans: Vec<(u64, u64)> = match range::decide(headers, length) {
            _ if !range::if_range_allows(headers, &self.meta) => vec![(0, length)],
            RangeDecision::Full => vec![(0, length)],
            RangeDecision::Partial(ranges) => {
                ranges.iter().map(|r| (r.first, r.last + 1)).collect()
            }
            RangeDecision::Unsatisfiable => return false,
        };
        spans
            .iter()
            .filter(|(first, end)| first < end)
            .all(|(first, end)| {
                (first / self.size..=(end - 1) / self.size).all(|index| {
                    let key = keys::slice(&self.key, self.size, &self.etag, index);
                    self.store.memory_get(&key).is_some()
                })
            })
    }

    /// Drops the description and every slice of this version: from memory
    /// at once (the next request starts afresh), from the other tiers and
    /// instances in the background. The object changed; they are never
    /// right again.
    fn forget_version(self: &Arc<Self>) {
        let count = self.meta.content_length.div_ceil(self.size);
        let keys: Vec<CacheKey> = std::iter::once(keys::description(&self.key))
            .chain((0..count).map(|i| keys::slice(&self.key, self.size, &self.etag, i)))
            .collect();
        for key in &keys {
            self.store.purge_memory(&PurgeScope::Entry(key.clone()));
        }
        let store = self.store.clone();
        tokio::spawn(async move {
            for key in keys {
                store.forget(&key, store.epoch_for(&key)).await;
            }
        });
    }
}

impl Source for Slicer {
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn stream(self: Arc<Self>, range: Range<u64>) -> BoxStream<'static, Result<Bytes, BoxError>> {
        futures_util::stream::unfold(
            (self, range.start, range.end),
            |(slicer, position, end)| async move {
                if position >= end {
                    return None;
                }
                let index = position / slicer.size;
                let start = index * slicer.size;
                match slice(&slicer, index).await {
                    Ok(bytes) => {
                        let from = (position - start) as usize;
                        let to = (bytes.len() as u64).min(end - start) as usize;
                        let next = start + to as u64;
                        Some((Ok(bytes.slice(from..to)), (slicer, next, end)))
                    }
                    Err(error) => Some((Err(error.into()), (slicer, end, end))),
                }
            },
        )
        .boxed()
    }
}

/// The stored description of `key`'s object, when fresh.
pub(crate) async fn described(store: &Store, key: &CacheKey) -> Option<ObjectMeta> {
    let found = store.lookup(&keys::description(key)).await?;
    if !is_fresh(&found.object) {
        return None;
    }
    let length = u64::from_be_bytes(found.object.body.as_ref().try_into().ok()?);
    Some(ObjectMeta {
        content_length: length,
        ..(*found.object.meta).clone()
    })
}

/// Whether the memory tier holds a fresh description of `key`'s object
/// saying it is larger than `max_item_size` (so no tier holds it whole).
pub(crate) fn known_large(store: &Store, key: &CacheKey, max_item_size: u64) -> bool {
    store
        .memory_get(&keys::description(key))
        .filter(is_fresh)
        .and_then(|entry| Some(u64::from_be_bytes(entry.body.as_ref().try_into().ok()?)))
        .is_some_and(|length| length > max_item_size)
}

/// Stores the description of `key`'s object (`meta`, from S3's answer)
/// unless a purge happened since `epoch`: its length is the entry's body.
pub(crate) fn describe(store: &Store, key: &CacheKey, meta: &ObjectMeta, epoch: u64) {
    let entry = CachedObject {
        meta: Arc::new(ObjectMeta {
            content_length: 8,
            ..meta.clone()
        }),
        body: Bytes::copy_from_slice(&meta.content_length.to_be_bytes()),
    };
    store.insert(&keys::description(key), &entry, epoch);
}

#[cfg(test)]
mod tests;
