//! An object being fetched, readable while it arrives.
//!
//! A range miss fetches the whole object (see `range_miss.rs`), but the
//! client asked for a few bytes and should get them as soon as they are
//! there, not after the whole transfer. A [`Growing`] keeps the chunks
//! received so far (the upstream's own `Bytes`, never copied until the end)
//! and wakes its readers at each chunk; [`pump`] reads the upstream body in
//! its own task, independent of any client, and stores the object once it
//! is complete. Readers (its [`Source`] stream) get any byte range of it:
//! at once for bytes already there, then as they arrive; the object's last
//! bytes only once it is stored (a client that read to the end finds it
//! cached, as with a plain GET's fill). A failed transfer ends their body
//! with an error (the client sees an aborted transfer, never made-up bytes).

use std::ops::Range;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use tokio::sync::watch;

use super::coalesce::Leader;
use super::fill_span::FillSpan;
use super::serve::streamed::Source;
use super::store::Store;
use super::{CacheKey, CachedObject, ObjectMeta};
use crate::body::{BoxError, ProxyBody};

/// How far the transfer got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// This many bytes arrived so far.
    Receiving(u64),
    /// Every byte arrived.
    Complete,
    /// The transfer broke off (upstream error, too long, too short).
    Failed,
}

/// The chunks received so far.
#[derive(Debug, Default)]
struct Received {
    /// Offset of each chunk's first byte, ascending.
    starts: Vec<u64>,
    chunks: Vec<Bytes>,
    /// Bytes received.
    length: u64,
    /// Bytes readers may read: all received but the last chunk, which is
    /// shown only once the object is stored, so a client that got the
    /// object's end finds it in the cache.
    visible: u64,
    failed: bool,
}

/// An object under transfer, shared by its pump and its readers.
#[derive(Debug)]
pub(crate) struct Growing {
    meta: Arc<ObjectMeta>,
    received: Mutex<Received>,
    progress: watch::Sender<Progress>,
}

/// The transfer broke off before the bytes a reader wanted.
#[derive(Debug, thiserror::Error)]
#[error("the upstream transfer of the object broke off")]
pub(crate) struct TransferFailed;

impl Growing {
    /// An empty transfer of the object `meta` describes.
    pub(crate) fn new(meta: ObjectMeta) -> Arc<Self> {
        Arc::new(Self {
            meta: Arc::new(meta),
            received: Mutex::default(),
            progress: watch::Sender::new(Progress::Receiving(0)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a chunk; `false` (and the transfer failed) when it would make
    /// the object longer than announced.
    fn push(&self, data: Bytes) -> bool {
        let length = {
            let mut received = self.lock();
            let length = received.length + data.len() as u64;
            if length > self.meta.content_length {
                drop(received);
                self.fail();
                return false;
            }
            if !data.is_empty() {
                let start = received.length;
                received.starts.push(start);
                received.chunks.push(data);
                received.length = length;
            }
            if length == self.meta.content_length {
                // The end: shown by `reveal`, after the store.
                return true;
            }
            received.visible = length;
            length
        };
        self.progress.send_replace(Progress::Receiving(length));
        true
    }

    /// Marks the transfer failed: readers waiting for more get an error.
    fn fail(&self) {
        self.lock().failed = true;
        self.progress.send_replace(Progress::Failed);
    }

    /// The whole object once exactly `content_length` bytes arrived (one
    /// copy into a contiguous buffer, as a stored entry needs); else the
    /// transfer is marked failed. Readers see the end after [`Self::reveal`].
    fn complete(&self) -> Option<CachedObject> {
        let body = {
            let received = self.lock();
            if received.failed || received.length != self.meta.content_length {
                None
            } else {
                let mut body = BytesMut::with_capacity(received.length as usize);
                for chunk in &received.chunks {
                    body.extend_from_slice(chunk);
                }
                Some(body.freeze())
            }
        };
        let Some(body) = body else {
            self.fail();
            return None;
        };
        Some(CachedObject {
            meta: self.meta.clone(),
            body,
        })
    }

    /// Shows every byte to readers (the object is complete, and stored if it could be).
    fn reveal(&self) {
        {
            let mut received = self.lock();
            received.visible = received.length;
        }
        self.progress.send_replace(Progress::Complete);
    }

    /// The bytes from `position` (at most up to `end`) in the chunk that
    /// holds it; `Ok(None)` when they have not arrived yet.
    fn read(&self, position: u64, end: u64) -> Result<Option<Bytes>, TransferFailed> {
        let received = self.lock();
        if position < received.visible {
            let index = received.starts.partition_point(|&s| s <= position) - 1;
            let start = received.starts[index];
            let chunk = &received.chunks[index];
            let from = (position - start) as usize;
            let to = chunk
                .len()
                .min((end.min(received.visible) - start) as usize);
            return Ok(Some(chunk.slice(from..to)));
        }
        if received.failed {
            return Err(TransferFailed);
        }
        Ok(None)
    }

    /// The bytes of `range` as a stream: what has arrived at once, the
    /// rest as it arrives, an error if the transfer breaks off first.
    fn chunks(
        self: &Arc<Self>,
        range: Range<u64>,
    ) -> impl Stream<Item = Result<Bytes, BoxError>> + Send + 'static {
        let progress = self.progress.subscribe();
        futures_util::stream::unfold(
            (self.clone(), range.start, range.end, progress),
            |(growing, position, end, mut progress)| async move {
                if position >= end {
                    return None;
                }
                loop {
                    match growing.read(position, end) {
                        Ok(Some(bytes)) => {
                            let next = position + bytes.len() as u64;
                            return Some((Ok(bytes), (growing, next, end, progress)));
                        }
                        Ok(None) => {
                            if progress.changed().await.is_err() {
                                return Some((
                                    Err(TransferFailed.into()),
                                    (growing, end, end, progress),
                                ));
                            }
                        }
                        Err(failed) => {
                            return Some((Err(failed.into()), (growing, end, end, progress)));
                        }
                    }
                }
            },
        )
    }
}

impl Source for Growing {
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    fn stream(self: Arc<Self>, range: Range<u64>) -> BoxStream<'static, Result<Bytes, BoxError>> {
        self.chunks(range).boxed()
    }
}

/// Where a completed transfer is stored.
#[derive(Debug)]
pub(crate) struct Destination {
    pub(crate) store: Arc<Store>,
    pub(crate) key: CacheKey,
    /// The key's purge epoch before the fetch: a purge since wins.
    pub(crate) epoch: u64,
    /// Waiters to tell about the stored object.
    pub(crate) leader: Leader,
    /// The `cache.fill` span (sampled requests only), ended with the transfer.
    pub(crate) span: FillSpan,
}

/// Reads the upstream `body` into `growing` to its end, whoever reads it,
/// then stores the object (when complete) and tells the waiters.
pub(crate) async fn pump(mut body: ProxyBody, growing: Arc<Growing>, destination: Destination) {
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data()
                    && !growing.push(data)
                {
                    return;
                }
            }
            Err(error) => {
                tracing::debug!(%error, "the upstream transfer of a range fill broke off");
                growing.fail();
                return;
            }
        }
    }
    let Destination {
        store,
        key,
        epoch,
        leader,
        span,
    } = destination;
    let Some(object) = growing.complete() else {
        return;
    };
    let stored = store.insert(&key, &object, epoch);
    span.stored(object.body.len(), stored);
    growing.reveal();
    leader.finish(stored.then_some(object));
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    fn growing(length: u64) -> Arc<Growing> {
        Growing::new(ObjectMeta {
            headers: http::HeaderMap::new(),
            content_length: length,
            etag: None,
            last_modified: None,
            stored_at: SystemTime::now(),
            fresh_until: SystemTime::now(),
        })
    }

    async fn collect(growing: &Arc<Growing>, range: Range<u64>) -> Result<Vec<u8>, BoxError> {
        let mut out = Vec::new();
        let mut stream = std::pin::pin!(growing.chunks(range));
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_range_is_answered_once_its_bytes_arrived_before_the_end() {
        let g = growing(10);
        assert!(g.push(Bytes::from_static(b"0123")));
        assert!(g.push(Bytes::from_static(b"45")));
        // The transfer is not complete: bytes 1..5 are there already.
        assert_eq!(collect(&g, 1..5).await.unwrap(), b"1234");
        let waiting = tokio::spawn({
            let g = g.clone();
            async move { collect(&g, 3..10).await }
        });
        assert!(g.push(Bytes::from_static(b"6789")));
        // The end is shown only once the object is complete (and stored).
        assert_eq!(g.read(6, 10).unwrap(), None);
        assert_eq!(g.complete().unwrap().body, "0123456789");
        g.reveal();
        assert_eq!(waiting.await.unwrap().unwrap(), b"3456789");
    }

    #[tokio::test]
    async fn a_broken_transfer_ends_readers_with_an_error() {
        let g = growing(10);
        assert!(g.push(Bytes::from_static(b"0123")));
        let waiting = tokio::spawn({
            let g = g.clone();
            async move { collect(&g, 2..8).await }
        });
        g.fail();
        assert!(waiting.await.unwrap().is_err());
        // Bytes that did arrive can still be read.
        assert_eq!(collect(&g, 0..4).await.unwrap(), b"0123");
    }

    #[test]
    fn too_long_or_short_is_never_complete() {
        let g = growing(3);
        assert!(!g.push(Bytes::from_static(b"0123")));
        assert!(g.complete().is_none());
        let g = growing(3);
        assert!(g.push(Bytes::from_static(b"01")));
        assert!(g.complete().is_none());
    }
}
