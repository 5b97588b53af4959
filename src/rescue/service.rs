use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::FutureExt;
use http::{Request, Response};
use tower::Service;

use crate::body::ProxyBody;
use crate::error::{ErrorSource, ProxyError};
use crate::request_id::RequestId;

/// The service made by [`super::RescueLayer`].
#[derive(Debug, Clone)]
pub struct Rescue<S> {
    pub(super) inner: S,
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
        // The inner stack is always ready; an error here would be a bug, surfaced in `call`.
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let id = request.extensions().get::<RequestId>().cloned();
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
            log(&error);
            Ok(error.into_response(id.as_ref()))
        })
    }
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
    use http_body_util::BodyExt;
    use tower::{ServiceBuilder, ServiceExt};

    use super::super::RescueLayer;
    use crate::body::ProxyBody;
    use crate::error::ProxyError;

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
}
