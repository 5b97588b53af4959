//! Streaming fill: the body goes to the client as it arrives while a copy
//! (capped at the item limit) is kept; the copy is stored only when the
//! upstream body completed with exactly `Content-Length` bytes.
//!
//! An upstream error, a body longer than announced, or the client going away
//! (the body is dropped before its end) abandons the copy: nothing partial is
//! ever stored, and coalesced waiters are released to fetch for themselves.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};

use super::coalesce::Leader;
use super::fill_span::FillSpan;
use super::store::Store;
use super::{CacheKey, CachedObject, ObjectMeta};
use crate::body::{BoxError, ProxyBody};

/// The copy being taken and where it goes once complete.
#[derive(Debug)]
pub(crate) struct Fill {
    pub(crate) store: Arc<Store>,
    pub(crate) key: CacheKey,
    pub(crate) meta: ObjectMeta,
    pub(crate) epoch: u64,
    /// Waiters to release (absent when this fill is a revalidation's).
    pub(crate) leader: Option<Leader>,
    /// The `cache.fill` span (sampled requests only), ended with the fill.
    pub(crate) span: FillSpan,
}

#[derive(Debug)]
struct Copying {
    fill: Fill,
    buffer: BytesMut,
}

/// A response body that tees into the cache.
#[derive(Debug)]
pub(crate) struct FillBody {
    inner: ProxyBody,
    copying: Option<Copying>,
}

impl FillBody {
    /// Wraps `inner`; `fill.meta.content_length` must be within the item limit.
    pub(crate) fn new(inner: ProxyBody, fill: Fill) -> Self {
        let expected = usize::try_from(fill.meta.content_length).unwrap_or(0);
        let mut body = Self {
            inner,
            copying: Some(Copying {
                buffer: BytesMut::with_capacity(expected),
                fill,
            }),
        };
        // An empty object is complete before its first frame.
        if expected == 0 && body.inner.is_end_stream() {
            body.complete();
        }
        body
    }

    fn take_data(&mut self, data: &Bytes) {
        let Some(copying) = &mut self.copying else {
            return;
        };
        let expected = copying.fill.meta.content_length;
        if (copying.buffer.len() + data.len()) as u64 > expected {
            // Longer than announced: never store it (dropping releases waiters).
            self.copying = None;
            return;
        }
        copying.buffer.extend_from_slice(data);
        // Exactly Content-Length bytes: the body is complete by HTTP framing.
        if copying.buffer.len() as u64 == expected {
            self.complete();
        }
    }

    fn complete(&mut self) {
        let Some(Copying { fill, buffer }) = self.copying.take() else {
            return;
        };
        if buffer.len() as u64 != fill.meta.content_length {
            return;
        }
        let bytes = buffer.len();
        let object = CachedObject {
            meta: Arc::new(fill.meta),
            body: buffer.freeze(),
        };
        let stored = fill.store.insert(&fill.key, &object, fill.epoch);
        fill.span.stored(bytes, stored);
        if let Some(leader) = fill.leader {
            leader.finish(stored.then_some(object));
        }
    }
}

impl Body for FillBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.take_data(data);
                }
            }
            // Aborted upstream: drop the copy.
            Some(Err(_)) => this.copying = None,
            None => this.complete(),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use http_body_util::{BodyExt, StreamBody};

    use super::*;
    use crate::body::boxed;
    use crate::cache::coalesce::{Coalescer, Role, Shared};
    use crate::config::CacheConfig;

    fn store() -> Arc<Store> {
        Arc::new(Store::new(&CacheConfig::default(), Default::default()).unwrap())
    }

    fn key() -> CacheKey {
        CacheKey {
            bucket: Arc::from("b"),
            backend: Default::default(),
            object: "k".into(),
            version_id: None,
        }
    }

    fn fill(store: &Arc<Store>, len: u64, leader: Option<Leader>) -> Fill {
        Fill {
            store: store.clone(),
            key: key(),
            meta: ObjectMeta {
                headers: http::HeaderMap::new(),
                content_length: len,
                etag: None,
                last_modified: None,
                stored_at: SystemTime::now(),
                fresh_until: SystemTime::now(),
            },
            epoch: store.epoch_for(&key()),
            leader,
            span: FillSpan::none(),
        }
    }

    fn chunks(parts: Vec<Result<&'static [u8], &'static str>>) -> ProxyBody {
        let frames = parts.into_iter().map(|p| {
            p.map(|b| Frame::data(Bytes::from_static(b)))
                .map_err(BoxError::from)
        });
        boxed(StreamBody::new(futures_util::stream::iter(frames)))
    }

    #[tokio::test]
    async fn a_complete_body_is_stored_and_streamed_unchanged() {
        let store = store();
        let coalescer = Arc::new(Coalescer::default());
        let Role::Leader(leader) = coalescer.join(&key()) else {
            panic!()
        };
        let Role::Waiter(waiter) = coalescer.join(&key()) else {
            panic!()
        };
        let body = FillBody::new(
            chunks(vec![Ok(b"hel"), Ok(b"lo")]),
            fill(&store, 5, Some(leader)),
        );
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes, "hello");
        assert_eq!(store.memory_get(&key()).unwrap().body, "hello");
        let Shared::Stored(object) = waiter.outcome().await else {
            panic!("stored")
        };
        assert_eq!(object.body, "hello");
    }

    #[tokio::test]
    async fn an_aborted_body_stores_nothing_and_releases_waiters() {
        let store = store();
        let coalescer = Arc::new(Coalescer::default());
        let Role::Leader(leader) = coalescer.join(&key()) else {
            panic!()
        };
        let Role::Waiter(waiter) = coalescer.join(&key()) else {
            panic!()
        };
        let body = FillBody::new(
            chunks(vec![Ok(b"hel"), Err("reset")]),
            fill(&store, 5, Some(leader)),
        );
        assert!(body.collect().await.is_err());
        assert!(store.memory_get(&key()).is_none());
        assert!(matches!(waiter.outcome().await, Shared::Aborted));
    }

    #[tokio::test]
    async fn a_dropped_body_stores_nothing() {
        let store = store();
        let mut body = FillBody::new(chunks(vec![Ok(b"hel"), Ok(b"lo")]), fill(&store, 5, None));
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "hel");
        drop(body);
        assert!(store.memory_get(&key()).is_none());
    }

    #[tokio::test]
    async fn short_or_long_bodies_are_not_stored() {
        let store = store();
        let short = FillBody::new(chunks(vec![Ok(b"hel")]), fill(&store, 5, None));
        short.collect().await.unwrap();
        assert!(store.memory_get(&key()).is_none());
        let long = FillBody::new(chunks(vec![Ok(b"hello!")]), fill(&store, 5, None));
        long.collect().await.unwrap();
        assert!(store.memory_get(&key()).is_none());
    }

    #[tokio::test]
    async fn a_purge_during_the_fill_wins() {
        let store = store();
        let mut body = FillBody::new(chunks(vec![Ok(b"hel"), Ok(b"lo")]), fill(&store, 5, None));
        body.frame().await.unwrap().unwrap();
        store.purge_memory(&crate::cache::PurgeScope::All);
        while body.frame().await.is_some() {}
        assert!(store.memory_get(&key()).is_none());
    }
}
