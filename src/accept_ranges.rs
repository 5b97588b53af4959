//! `Accept-Ranges: bytes` on every object answer (200 and 206, GET and
//! HEAD), whichever layer produced it: S3 through the upstream, the cache,
//! a website's index document, or any answer path added later. S3 serves
//! ranges of every object, and media players and download managers only
//! seek or resume when the answer says so.
//!
//! One small layer at the top of each bucket's stack, instead of one
//! insertion per answer path: a path that forgets it cannot exist. An
//! answer that already carries the field keeps it; errors and 304s get
//! none.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Request, Response, StatusCode, header};
use tower::{Layer, Service};

/// Adds `Accept-Ranges: bytes` to the 200 and 206 answers of a bucket.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcceptRangesLayer;

impl<S> Layer<S> for AcceptRangesLayer {
    type Service = AcceptRanges<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AcceptRanges { inner }
    }
}

/// The service made by [`AcceptRangesLayer`].
#[derive(Debug, Clone)]
pub struct AcceptRanges<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for AcceptRanges<S>
where
    S: Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`AcceptRanges`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, R, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = Result<Response<R>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut result = ready!(self.project().inner.poll(cx));
        if let Ok(response) = &mut result
            && matches!(
                response.status(),
                StatusCode::OK | StatusCode::PARTIAL_CONTENT
            )
        {
            response
                .headers_mut()
                .entry(header::ACCEPT_RANGES)
                .or_insert(HeaderValue::from_static("bytes"));
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use tower::{ServiceBuilder, ServiceExt};

    use super::*;

    async fn answer(status: u16, preset: Option<&'static str>) -> Option<String> {
        let service = ServiceBuilder::new().layer(AcceptRangesLayer).service_fn(
            move |_: Request<()>| async move {
                let mut response = Response::new(());
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                if let Some(value) = preset {
                    response
                        .headers_mut()
                        .insert(header::ACCEPT_RANGES, HeaderValue::from_static(value));
                }
                Ok::<_, std::convert::Infallible>(response)
            },
        );
        let response = service.oneshot(Request::new(())).await.unwrap();
        let value = response.headers().get(header::ACCEPT_RANGES)?;
        Some(value.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn object_answers_say_bytes_and_others_nothing() {
        assert_eq!(answer(200, None).await.as_deref(), Some("bytes"));
        assert_eq!(answer(206, None).await.as_deref(), Some("bytes"));
        assert_eq!(answer(200, Some("none")).await.as_deref(), Some("none"));
        assert_eq!(answer(304, None).await, None);
        assert_eq!(answer(404, None).await, None);
    }
}
