use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use http::{Request, Response};
use tower::Service;

use crate::body::ProxyBody;
use crate::error::{ErrorFormat, ErrorSource, ProxyError};
use crate::request_id::RequestId;

/// The service made by [`super::RescueLayer`].
///
/// Its `poll_ready` follows the inner service's: `Pending` while the inner
/// one is, and when the inner one fails, the failure is kept and becomes the
/// answer to the next call, which then does not reach the inner service
/// (tower forbids calling a service whose `poll_ready` did not return
/// `Ready(Ok)`).
#[derive(Debug)]
pub struct Rescue<S> {
    inner: S,
    /// The inner service's readiness error, answered by the next `call`.
    not_ready: Option<ProxyError>,
}

impl<S> Rescue<S> {
    pub(super) fn new(inner: S) -> Self {
        Self {
            inner,
            not_ready: None,
        }
    }
}

impl<S: Clone> Clone for Rescue<S> {
    /// A clone has not been polled: it starts without the readiness error.
    fn clone(&self) -> Self {
        Self::new(self.inner.clone())
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

impl<S, B> Service<Request<B>> for Rescue<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError>,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.not_ready.is_some() {
            return Poll::Ready(Ok(()));
        }
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(error)) => {
                self.not_ready = Some(error);
                Poll::Ready(Ok(()))
            }
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let id = request.extensions().get::<RequestId>().cloned();
        // Decided from the request head before it moves on: JSON, or S3's
        // XML for SDK clients (a bucket with its own `errors` renders its
        // errors itself, below the route).
        let format = ErrorFormat::detect(&request);
        if let Some(error) = self.not_ready.take() {
            let response = render(error, id.as_ref(), &format);
            return Box::pin(std::future::ready(Ok(response)));
        }
        let called = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request)));
        Box::pin(async move {
            let result = match called {
                Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                Err(panic) => Err(panic),
            };
            let error = match result {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(error)) => error,
                Err(_panic) => ProxyError::Internal("a layer panicked".into()),
            };
            Ok(render(error, id.as_ref(), &format))
        })
    }
}

/// Logs `error` and renders its answer in `format`; also used by layers that
/// must see an inner error as a response (CORS adds its fields to error
/// answers, a bucket's fixed `errors` format renders its own).
pub(crate) fn render(
    error: ProxyError,
    id: Option<&RequestId>,
    format: &ErrorFormat,
) -> Response<ProxyBody> {
    log(&error);
    error.into_response_as(id, format)
}

fn log(error: &ProxyError) {
    let status = error.status().as_u16();
    match (error.source_kind(), error) {
        (
            ErrorSource::Upstream,
            ProxyError::S3 {
                status: s3_status,
                code,
                message,
            },
        ) => {
            tracing::warn!(status, s3_status = s3_status.as_u16(), s3_code = %code, s3_message = %message, "S3 returned an error");
        }
        (ErrorSource::Upstream, _) => tracing::warn!(status, error = %error, "upstream failure"),
        (ErrorSource::Client, _) => tracing::info!(status, error = %error, "request rejected"),
        (ErrorSource::Internal, _) => tracing::error!(status, error = %error, "internal error"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll};

    use http::{Request, Response};
    use http_body_util::BodyExt;
    use tower::{Layer, Service, ServiceBuilder, ServiceExt};

    use super::super::RescueLayer;
    use crate::body::ProxyBody;
    use crate::error::ProxyError;
    use crate::request_id::RequestId;

    #[tokio::test]
    async fn errors_and_panics_become_json() {
        let svc = ServiceBuilder::new().layer(RescueLayer).service_fn(
            |req: http::Request<()>| async move {
                if req.uri().path() == "/panic" {
                    panic!("boom");
                }
                Err::<http::Response<ProxyBody>, _>(ProxyError::NoRoute)
            },
        );
        let res = svc.clone().oneshot(http::Request::new(())).await.unwrap();
        assert_eq!(res.status(), 404);
        let req = http::Request::builder().uri("/panic").body(()).unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(res.status(), 500);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("InternalError"));
    }

    /// Fails in `poll_ready`; calling it after that breaks tower's contract.
    #[derive(Clone, Default)]
    struct FailsReady {
        called: Arc<AtomicBool>,
    }

    impl Service<Request<()>> for FailsReady {
        type Response = Response<ProxyBody>;
        type Error = ProxyError;
        type Future = std::future::Ready<Result<Response<ProxyBody>, ProxyError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
            Poll::Ready(Err(ProxyError::NoRoute))
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            self.called.store(true, Ordering::SeqCst);
            panic!("called after poll_ready failed");
        }
    }

    #[tokio::test]
    async fn an_inner_readiness_error_is_answered_without_calling_inner() {
        let inner = FailsReady::default();
        let called = inner.called.clone();
        let id = RequestId::generate();
        let mut request = Request::new(());
        request.extensions_mut().insert(id.clone());
        let res = RescueLayer.layer(inner).oneshot(request).await.unwrap();
        assert!(
            !called.load(Ordering::SeqCst),
            "inner called after its poll_ready failed"
        );
        assert_eq!(res.status(), 404);
        let body = res.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "NoSuchRoute", "{body}");
        assert_eq!(body["error"]["request_id"], id.as_str(), "{body}");
    }

    /// Never ready.
    #[derive(Clone)]
    struct NeverReady;

    impl Service<Request<()>> for NeverReady {
        type Response = Response<ProxyBody>;
        type Error = ProxyError;
        type Future = std::future::Ready<Result<Response<ProxyBody>, ProxyError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ProxyError>> {
            Poll::Pending
        }

        fn call(&mut self, _: Request<()>) -> Self::Future {
            panic!("called while not ready");
        }
    }

    #[test]
    fn an_inner_service_not_ready_keeps_rescue_not_ready() {
        let mut svc = RescueLayer.layer(NeverReady);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert!(svc.poll_ready(&mut cx).is_pending());
    }
}
