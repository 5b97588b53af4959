//! A response body that tells a [`BodyWatcher`] about its data and how it
//! ended, for the layers that act when a response has been sent (access
//! log, audit log, request log, circuit breaker).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

use super::{BoxError, ProxyBody};

/// How a watched body ended.
#[derive(Debug)]
pub enum BodyEnd<'a> {
    /// Its last frame was sent.
    Complete,
    /// It failed mid-stream with this error (passed on to the client).
    Failed(&'a BoxError),
    /// It was dropped before its end: the client went away.
    Abandoned,
}

/// What a [`WatchedBody`] reports to.
pub trait BodyWatcher: Send + Sync + Unpin + 'static {
    /// Called with each data frame before it is passed on.
    fn on_data(&mut self, _data: &Bytes) {}

    /// Called once, when the body ends; the inner body has been dropped by
    /// then, so whatever it held (and measured on drop) is released.
    fn on_end(self, end: BodyEnd<'_>);
}

/// A body passing `inner`'s frames through unchanged while `W` watches.
pub struct WatchedBody<W: BodyWatcher> {
    inner: Option<ProxyBody>,
    watcher: Option<W>,
}

impl<W: BodyWatcher> std::fmt::Debug for WatchedBody<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchedBody")
            .field("ended", &self.watcher.is_none())
            .finish_non_exhaustive()
    }
}

impl<W: BodyWatcher> WatchedBody<W> {
    /// `inner` watched by `watcher`, boxed; an empty body ends at once.
    pub fn wrap(inner: ProxyBody, watcher: W) -> ProxyBody {
        let mut body = Self {
            inner: Some(inner),
            watcher: Some(watcher),
        };
        if body.inner.as_ref().is_some_and(Body::is_end_stream) {
            body.end(BodyEnd::Complete);
        }
        super::boxed(body)
    }

    fn end(&mut self, end: BodyEnd<'_>) {
        self.inner = None;
        if let Some(watcher) = self.watcher.take() {
            watcher.on_end(end);
        }
    }
}

impl<W: BodyWatcher> Body for WatchedBody<W> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = std::task::ready!(Pin::new(inner).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if let (Some(data), Some(watcher)) = (frame.data_ref(), this.watcher.as_mut()) {
                    watcher.on_data(data);
                }
                // A server stops polling once the body says it has ended.
                if this.inner.as_ref().is_some_and(Body::is_end_stream) {
                    this.end(BodyEnd::Complete);
                }
            }
            Some(Err(error)) => this.end(BodyEnd::Failed(error)),
            None => this.end(BodyEnd::Complete),
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl<W: BodyWatcher> Drop for WatchedBody<W> {
    fn drop(&mut self) {
        let at_end = self.inner.as_ref().is_some_and(Body::is_end_stream);
        self.end(if at_end {
            BodyEnd::Complete
        } else {
            BodyEnd::Abandoned
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use http_body_util::BodyExt;

    use super::*;

    /// Records what it was told.
    struct Log(Arc<Mutex<Vec<String>>>);

    impl BodyWatcher for Log {
        fn on_data(&mut self, data: &Bytes) {
            self.0.lock().unwrap().push(format!("data {}", data.len()));
        }
        fn on_end(self, end: BodyEnd<'_>) {
            let end = match end {
                BodyEnd::Complete => "complete".to_owned(),
                BodyEnd::Failed(e) => format!("failed {e}"),
                BodyEnd::Abandoned => "abandoned".to_owned(),
            };
            self.0.lock().unwrap().push(end);
        }
    }

    fn watched(body: ProxyBody) -> (ProxyBody, Arc<Mutex<Vec<String>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        (WatchedBody::wrap(body, Log(log.clone())), log)
    }

    fn stream(frames: Vec<Result<&'static [u8], &'static str>>) -> ProxyBody {
        let frames = frames.into_iter().map(|f| {
            f.map(|b| Frame::data(Bytes::from_static(b)))
                .map_err(BoxError::from)
        });
        super::super::boxed(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )))
    }

    #[tokio::test]
    async fn reports_data_then_the_end_once() {
        let (body, log) = watched(stream(vec![Ok(b"ab"), Ok(b"cde")]));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"abcde");
        assert_eq!(*log.lock().unwrap(), ["data 2", "data 3", "complete"]);
    }

    #[tokio::test]
    async fn an_empty_body_ends_at_once_and_a_full_one_with_its_frame() {
        let (_body, log) = watched(super::super::empty());
        assert_eq!(*log.lock().unwrap(), ["complete"]);
        let (mut body, log) = watched(super::super::full("xyz"));
        body.frame().await.unwrap().unwrap();
        assert_eq!(*log.lock().unwrap(), ["data 3", "complete"]);
        assert!(body.is_end_stream());
    }

    #[tokio::test]
    async fn a_failure_and_an_early_drop_are_told_apart() {
        let (body, log) = watched(stream(vec![Ok(b"a"), Err("reset")]));
        assert!(body.collect().await.is_err());
        assert_eq!(*log.lock().unwrap(), ["data 1", "failed reset"]);
        let (mut body, log) = watched(stream(vec![Ok(b"a"), Ok(b"b")]));
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert_eq!(*log.lock().unwrap(), ["data 1", "abandoned"]);
    }
}
