use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{Request, Response};
use http_body::Body as _;
use pin_project_lite::pin_project;
use tower::Service;

use super::body::Reported;
use super::outcome::Outcome;
use super::state::{Breaker, Permit};
use crate::body::{ProxyBody, WatchedBody};
use crate::error::ProxyError;

/// The service made by [`super::CircuitBreakerLayer`].
#[derive(Debug, Clone)]
pub struct CircuitBreaker<S> {
    pub(super) inner: S,
    pub(super) breaker: Arc<Breaker>,
}

impl<S> Service<Request<ProxyBody>> for CircuitBreaker<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ProxyBody>) -> Self::Future {
        match self.breaker.admit() {
            Ok(permit) => ResponseFuture::called(self.inner.call(request), permit),
            // Refused at once: S3 is not asked while the breaker is open.
            Err(retry_after) => ResponseFuture::open(retry_after),
        }
    }
}

pin_project! {
    /// The response of a request through a breaker.
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        // `None` when the breaker refused the request.
        #[pin]
        future: Option<F>,
        // Moves into the body, or reports an error before it.
        permit: Option<Permit>,
        // When a probe may go through, for a refused request.
        retry_after: Duration,
    }
}

impl<F> ResponseFuture<F> {
    fn called(future: F, permit: Permit) -> Self {
        Self {
            future: Some(future),
            permit: Some(permit),
            retry_after: Duration::ZERO,
        }
    }

    fn open(retry_after: Duration) -> Self {
        Self {
            future: None,
            permit: None,
            retry_after,
        }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, ProxyError>>,
{
    type Output = Result<Response<ProxyBody>, ProxyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(future) = this.future.as_pin_mut() else {
            return Poll::Ready(Err(ProxyError::CircuitOpen {
                retry_after: *this.retry_after,
            }));
        };
        let result = ready!(future.poll(cx));
        let Some(permit) = this.permit.take() else {
            return Poll::Ready(result);
        };
        Poll::Ready(match result {
            Ok(response) => Ok(response.map(|body| watch(body, permit))),
            Err(error) => {
                permit.finish(Outcome::of_error(&error));
                Err(error)
            }
        })
    }
}

/// The body that reports the outcome when it ends; an empty one is a
/// success at once (a server may never poll it).
fn watch(body: ProxyBody, permit: Permit) -> ProxyBody {
    if body.is_end_stream() {
        permit.finish(Outcome::Success);
        return body;
    }
    WatchedBody::wrap(body, Reported(permit))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use http::StatusCode;
    use http_body_util::{BodyExt, StreamBody};
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;
    use crate::body::{BoxError, boxed, full};
    use crate::breaker::{BreakerConfig, CircuitBreakerLayer, State};

    fn breaker() -> Arc<Breaker> {
        Arc::new(Breaker::new(
            BreakerConfig {
                failure_threshold: 2,
                success_threshold: 1,
                timeout: Duration::from_secs(5),
                half_open_max_requests: 1,
            },
            "b",
            "primary",
        ))
    }

    fn request() -> Request<ProxyBody> {
        Request::new(crate::body::empty())
    }

    /// A body that sends one chunk, then fails.
    fn broken_body() -> ProxyBody {
        let frames: Vec<Result<http_body::Frame<Bytes>, BoxError>> = vec![
            Ok(http_body::Frame::data(Bytes::from_static(b"part"))),
            Err("reset".into()),
        ];
        boxed(StreamBody::new(futures_util::stream::iter(frames)))
    }

    #[tokio::test(start_paused = true)]
    async fn failures_open_it_and_an_open_breaker_never_calls_inner() {
        let calls = Arc::new(AtomicUsize::new(0));
        let b = breaker();
        let counted = calls.clone();
        let svc = ServiceBuilder::new()
            .layer(CircuitBreakerLayer::new(b.clone()))
            .service_fn(move |_req: Request<ProxyBody>| {
                counted.fetch_add(1, Ordering::SeqCst);
                async {
                    Err::<Response<ProxyBody>, _>(ProxyError::S3 {
                        status: StatusCode::SERVICE_UNAVAILABLE,
                        code: "SlowDown".into(),
                        message: String::new(),
                    })
                }
            });
        for _ in 0..2 {
            assert!(svc.clone().oneshot(request()).await.is_err());
        }
        assert_eq!(b.state(), State::Open);
        let refused = svc.clone().oneshot(request()).await.unwrap_err();
        assert!(
            matches!(refused, ProxyError::CircuitOpen { .. }),
            "{refused}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_outcome_is_the_body_end_not_the_head() {
        let b = breaker();
        let svc = ServiceBuilder::new()
            .layer(CircuitBreakerLayer::new(b.clone()))
            .service_fn(|_req: Request<ProxyBody>| async {
                Ok::<_, ProxyError>(Response::new(broken_body()))
            });
        for _ in 0..2 {
            let response = svc.clone().oneshot(request()).await.unwrap();
            assert_eq!(b.state(), State::Closed, "the head alone proves nothing");
            assert!(response.into_body().collect().await.is_err());
        }
        assert_eq!(b.state(), State::Open, "two bodies broke mid-stream");
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_dropped_by_the_client_teaches_nothing_and_a_whole_one_succeeds() {
        let b = breaker();
        let broken = ServiceBuilder::new()
            .layer(CircuitBreakerLayer::new(b.clone()))
            .service_fn(|_req: Request<ProxyBody>| async {
                Ok::<_, ProxyError>(Response::new(broken_body()))
            });
        // One failure counted, then two bodies dropped unread: still closed.
        let response = broken.clone().oneshot(request()).await.unwrap();
        assert!(response.into_body().collect().await.is_err());
        for _ in 0..2 {
            drop(broken.clone().oneshot(request()).await.unwrap());
        }
        assert_eq!(b.state(), State::Closed);
        let whole = ServiceBuilder::new()
            .layer(CircuitBreakerLayer::new(b.clone()))
            .service_fn(|_req: Request<ProxyBody>| async {
                Ok::<_, ProxyError>(Response::new(full("whole")))
            });
        let body = whole.oneshot(request()).await.unwrap().into_body();
        assert_eq!(body.collect().await.unwrap().to_bytes(), "whole");
        // The success reset the count: one more failure does not open it.
        let response = broken.oneshot(request()).await.unwrap();
        assert!(response.into_body().collect().await.is_err());
        assert_eq!(b.state(), State::Closed);
    }
}
