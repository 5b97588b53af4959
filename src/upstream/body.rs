use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::body::BoxError;
use crate::config::ranges::MAX_DURATION;

/// Fails a streaming body when no frame arrives for `idle`.
///
/// An S3 connection that stalls mid-object would otherwise hold the client
/// (and a pooled connection) forever; this is the body-side twin of the
/// request timeout.
pub struct IdleTimeoutBody<B> {
    inner: B,
    idle: Duration,
    /// When the last frame arrived; the timer is re-armed from it lazily, so
    /// a busy stream does not touch the timer wheel on every chunk.
    last_frame: Instant,
    /// Created the first time the inner body is not ready: a small object
    /// that arrives with its headers never allocates or arms a timer.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl<B> std::fmt::Debug for IdleTimeoutBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdleTimeoutBody")
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl<B> IdleTimeoutBody<B> {
    /// Wraps `inner`, failing it after `idle` without data (at most
    /// [`MAX_DURATION`], so the deadline never overflows the clock).
    pub fn new(inner: B, idle: Duration) -> Self {
        Self {
            inner,
            idle: idle.min(MAX_DURATION),
            last_frame: Instant::now(),
            sleep: None,
        }
    }
}

/// The body stalled for longer than the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("the upstream body stalled for {0:?}")]
pub struct BodyStalled(Duration);

impl<B> Body for IdleTimeoutBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.last_frame = Instant::now();
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        let (last_frame, idle) = (this.last_frame, this.idle);
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(last_frame + idle)));
        loop {
            std::task::ready!(sleep.as_mut().poll(cx));
            let deadline = this.last_frame + this.idle;
            if Instant::now() >= deadline {
                return Poll::Ready(Some(Err(Box::new(BodyStalled(this.idle)))));
            }
            // Frames arrived since the timer was armed: wait out the rest.
            sleep.as_mut().reset(deadline);
        }
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
    use http_body_util::{BodyExt, StreamBody};
    use tokio::sync::mpsc;

    use super::IdleTimeoutBody;

    type Chunks = std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = Result<http_body::Frame<Bytes>, std::io::Error>> + Send,
        >,
    >;

    fn channel_body() -> (mpsc::Sender<Bytes>, IdleTimeoutBody<StreamBody<Chunks>>) {
        let (tx, rx) = mpsc::channel::<Bytes>(4);
        let stream: Chunks = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|chunk| (Ok(http_body::Frame::data(chunk)), rx))
        }));
        (
            tx,
            IdleTimeoutBody::new(StreamBody::new(stream), Duration::from_secs(10)),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_body_fails_after_the_idle_timeout() {
        let (_tx, mut body) = channel_body();
        let started = tokio::time::Instant::now();
        let frame = body.frame().await.expect("an error frame");
        assert!(frame.is_err());
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_body_never_times_out() {
        let (tx, mut body) = channel_body();
        tokio::spawn(async move {
            for _ in 0..5 {
                tokio::time::sleep(Duration::from_secs(6)).await;
                tx.send(Bytes::from_static(b"chunk")).await.unwrap();
            }
        });
        let mut received = 0;
        while let Some(frame) = body.frame().await {
            assert!(
                frame.is_ok(),
                "30 s of 6 s gaps must not trip a 10 s idle timeout"
            );
            received += 1;
        }
        assert_eq!(received, 5);
    }
}
