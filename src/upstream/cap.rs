//! `upstream.max_connections_per_bucket`: a bucket's share of the sockets.
//!
//! Every request to S3 holds a permit of its bucket's [`ConnectionCap`] from
//! before it is sent until its response body ends (or the exchange fails),
//! so a bucket with slow downloads cannot take every upstream connection the
//! proxy may open. A request that finds every permit taken waits
//! `upstream.connection_wait_ms` for one, then is answered 503
//! [`ProxyError::UpstreamBusy`].
//!
//! Capped or not, every exchange holds a [`Lease`] for as long, which counts
//! it in `yatagarasu_upstream_connections_active{bucket}`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use metrics::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::UpstreamConfig;
use crate::error::ProxyError;

/// One bucket's cap on requests in flight to S3.
///
/// Cloning shares the permits: every service that sends for the bucket must
/// hold a clone of the same cap.
#[derive(Debug, Clone)]
pub struct ConnectionCap {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl ConnectionCap {
    /// A cap of `max` requests in flight, waiting at most `wait` for one to
    /// end; `None` for `max == 0` (no cap, nothing to pay per request).
    pub fn new(max: usize, wait: Duration) -> Option<Self> {
        (max > 0).then(|| Self {
            permits: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            wait,
        })
    }

    /// A bucket's own cap, from the `upstream:` section.
    pub fn for_bucket(config: &UpstreamConfig) -> Option<Self> {
        Self::new(config.max_connections_per_bucket, config.connection_wait)
    }

    /// Takes a permit, waiting at most the configured wait for one.
    pub(crate) async fn acquire(&self) -> Result<OwnedSemaphorePermit, ProxyError> {
        // The common case, a free permit, arms no timer.
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(permit);
        }
        match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // Timed out (the semaphore is never closed).
            _ => Err(ProxyError::UpstreamBusy),
        }
    }
}

/// What one exchange with S3 holds until its response body ends: the
/// bucket's permit (when capped) and its mark in the bucket's
/// active-connections gauge, both given back on drop.
#[derive(Debug)]
pub(crate) struct Lease {
    _permit: Option<OwnedSemaphorePermit>,
    active: Gauge,
}

impl Lease {
    /// Counts one more exchange in `active` until the lease is dropped.
    pub(crate) fn new(permit: Option<OwnedSemaphorePermit>, active: Gauge) -> Self {
        active.increment(1.0);
        Self {
            _permit: permit,
            active,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.active.decrement(1.0);
    }
}

/// A response body that gives its bucket's lease back when it ends.
///
/// Ending is the last frame, an error, or the body being dropped (a client
/// that went away), whichever comes first.
#[derive(Debug)]
pub(crate) struct PermitBody<B> {
    inner: B,
    lease: Option<Lease>,
}

impl<B> PermitBody<B> {
    /// Holds `lease` until `inner` ends.
    pub(crate) fn new(inner: B, lease: Lease) -> Self {
        Self {
            inner,
            lease: Some(lease),
        }
    }
}

impl<B> Body for PermitBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = &mut *self;
        let frame = std::task::ready!(Pin::new(&mut this.inner).poll_frame(cx));
        if !matches!(frame, Some(Ok(_))) || this.inner.is_end_stream() {
            this.lease = None;
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
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    use super::{ConnectionCap, Lease, PermitBody};
    use crate::error::ProxyError;

    #[test]
    fn zero_means_no_cap() {
        assert!(ConnectionCap::new(0, Duration::from_millis(100)).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cap_answers_busy_after_the_wait() {
        let cap = ConnectionCap::new(1, Duration::from_millis(100)).unwrap();
        let held = cap.acquire().await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(matches!(cap.acquire().await, Err(ProxyError::UpstreamBusy)));
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        drop(held);
        assert!(cap.acquire().await.is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn a_permit_freed_during_the_wait_is_taken() {
        let cap = ConnectionCap::new(1, Duration::from_secs(10)).unwrap();
        let held = cap.acquire().await.unwrap();
        let waiter = tokio::spawn({
            let cap = cap.clone();
            async move { cap.acquire().await.is_ok() }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(held);
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn the_permit_returns_when_the_body_ends() {
        let cap = ConnectionCap::new(1, Duration::ZERO).unwrap();
        let permit = cap.acquire().await.unwrap();
        let lease = Lease::new(Some(permit), metrics::Gauge::noop());
        let mut body = PermitBody::new(Full::new(Bytes::from_static(b"data")), lease);
        assert!(matches!(cap.acquire().await, Err(ProxyError::UpstreamBusy)));
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "data");
        // Ended with its last frame, before the body is dropped.
        assert!(cap.acquire().await.is_ok());
        drop(body);
    }
}
