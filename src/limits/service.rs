use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{Method, Request, Response};
use tower::Service;

use super::{SafePath, sanitize_path};
use crate::body::ProxyBody;
use crate::error::ProxyError;

/// The service made by [`super::SecurityLimitsLayer`].
#[derive(Debug, Clone)]
pub struct SecurityLimits<S> {
    pub(super) inner: S,
}

impl<S, B> Service<Request<B>> for SecurityLimits<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = Either<Ready<Result<Response<ProxyBody>, ProxyError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let method = request.method().clone();
            return Either::Left(ready(Err(ProxyError::MethodNotAllowed(method))));
        }
        match sanitize_path(request.uri().path()) {
            Ok(path) => {
                request.extensions_mut().insert(SafePath(path));
                Either::Right(self.inner.call(request))
            }
            Err(e) => Either::Left(ready(Err(ProxyError::InvalidPath(e.message())))),
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::{ServiceBuilder, ServiceExt};

    use super::super::{SafePath, SecurityLimitsLayer};
    use crate::body::{ProxyBody, full};
    use crate::error::ProxyError;

    async fn echo(req: http::Request<()>) -> Result<http::Response<ProxyBody>, ProxyError> {
        let path = req.extensions().get::<SafePath>().unwrap().0.clone();
        Ok(http::Response::new(full(path)))
    }

    async fn call(method: &str, uri: &str) -> Result<http::Response<ProxyBody>, ProxyError> {
        let svc = ServiceBuilder::new()
            .layer(SecurityLimitsLayer)
            .service_fn(echo);
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap();
        svc.oneshot(req).await
    }

    #[tokio::test]
    async fn only_get_and_head_pass() {
        assert!(call("GET", "/b/k").await.is_ok());
        assert!(call("HEAD", "/b/k").await.is_ok());
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let err = call(method, "/b/k").await.unwrap_err();
            assert_eq!(err.status(), 405, "{method}");
        }
    }

    #[tokio::test]
    async fn traversal_is_a_400() {
        let err = call("GET", "/b/%2e%2e/x").await.unwrap_err();
        assert_eq!(err.status(), 400);
    }
}
