//! What one client connection is doing, as its watchdog needs to know it:
//! whether a request is in flight, and since when it has been idle.
//!
//! The service of every connection is wrapped in [`Tracked`]: a call counts
//! as in flight from the moment hyper hands over the request head until the
//! response body is dropped (sent in full, or abandoned), so a long download
//! keeps its connection busy. Bookkeeping is two atomics and a clock read per
//! request; the watchdog reads them only when its timer fires.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tokio::time::{Duration, Instant};

/// `idle_since` before the first request ended.
const NEVER: u64 = 0;

/// The shared state of one connection.
#[derive(Debug)]
pub(super) struct Activity {
    accepted: Instant,
    in_flight: AtomicUsize,
    /// One more than the milliseconds after `accepted` when the last request
    /// ended ([`NEVER`]: none yet).
    idle_since: AtomicU64,
}

/// What the watchdog sees when its timer fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// At least one request is in flight.
    Busy,
    /// No request was ever made on this connection.
    NeverUsed,
    /// Nothing in flight since this instant.
    IdleSince(Instant),
}

impl Activity {
    /// A connection accepted just now.
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Self {
            accepted: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(NEVER),
        })
    }

    /// When the connection was accepted.
    pub(super) fn accepted(&self) -> Instant {
        self.accepted
    }

    /// Whether a request is in flight, and if not, since when.
    pub(super) fn state(&self) -> State {
        // Acquire pairs with the Release in `end`: once the count is seen at
        // zero, the end time stored before it is seen too.
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return State::Busy;
        }
        match self.idle_since.load(Ordering::Acquire) {
            NEVER => State::NeverUsed,
            millis => State::IdleSince(self.accepted + Duration::from_millis(millis - 1)),
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    fn end(&self) {
        let millis = u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        // `fetch_max`: with HTTP/2, an older end must not overwrite a newer one.
        self.idle_since.fetch_max(millis + 1, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One request in flight; ends when dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.end();
    }
}

/// A connection's service that reports its requests to [`Activity`].
#[derive(Debug, Clone)]
pub(super) struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Wraps the service of the connection `activity` describes.
    pub(super) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S, R, B> hyper::service::Service<Request<R>> for Tracked<S>
where
    S: hyper::service::Service<Request<R>, Response = Response<B>>,
{
    type Response = Response<TrackedBody<B>>;
    type Error = S::Error;
    type Future = TrackedFuture<S::Future>;

    fn call(&self, request: Request<R>) -> Self::Future {
        let in_flight = self.activity.begin();
        TrackedFuture {
            inner: self.inner.call(request),
            in_flight: Some(in_flight),
        }
    }
}

pin_project! {
    /// The response future of [`Tracked`]: moves the in-flight mark into the body.
    #[derive(Debug)]
    pub(super) struct TrackedFuture<F> {
        #[pin]
        inner: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B, E> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<TrackedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let in_flight = this.in_flight.take();
        Poll::Ready(result.map(|response| {
            response.map(|inner| TrackedBody {
                inner,
                _in_flight: in_flight,
            })
        }))
    }
}

pin_project! {
    /// A response body that keeps its request in flight until it is dropped.
    #[derive(Debug)]
    pub(super) struct TrackedBody<B> {
        #[pin]
        inner: B,
        _in_flight: Option<InFlight>,
    }
}

impl<B: Body> Body for TrackedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        self.project().inner.poll_frame(cx)
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
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    use super::*;

    #[derive(Clone)]
    struct Echo;

    impl hyper::service::Service<Request<()>> for Echo {
        type Response = Response<Full<Bytes>>;
        type Error = Infallible;
        type Future = std::future::Ready<Result<Self::Response, Infallible>>;

        fn call(&self, _request: Request<()>) -> Self::Future {
            std::future::ready(Ok(Response::new(Full::new(Bytes::from_static(b"hi")))))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_is_in_flight_until_its_body_is_dropped() {
        use hyper::service::Service as _;
        let activity = Activity::new();
        let service = Tracked::new(Echo, activity.clone());
        assert_eq!(activity.state(), State::NeverUsed);

        let pending = service.call(Request::new(()));
        assert_eq!(activity.state(), State::Busy, "counted from the call");
        let response = pending.await.unwrap();
        assert_eq!(activity.state(), State::Busy, "the body is still unsent");

        tokio::time::advance(Duration::from_secs(5)).await;
        let body = response.into_body();
        assert_eq!(body.size_hint().exact(), Some(2));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"hi");
        assert_eq!(
            activity.state(),
            State::IdleSince(activity.accepted() + Duration::from_secs(5))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandoned_response_ends_the_request() {
        use hyper::service::Service as _;
        let activity = Activity::new();
        let service = Tracked::new(Echo, activity.clone());
        drop(service.call(Request::new(())));
        assert!(matches!(activity.state(), State::IdleSince(_)));
    }
}
