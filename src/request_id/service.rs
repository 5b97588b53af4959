use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower::Service;
use tracing::Instrument;

use super::{RequestId, X_REQUEST_ID};

/// The service made by [`super::RequestIdLayer`].
#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    pub(super) inner: S,
}

impl<S, B, RB> Service<Request<B>> for RequestIdService<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let id = request
            .headers()
            .get(&X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .and_then(RequestId::parse)
            .unwrap_or_else(RequestId::generate);
        // Visible ASCII only, so this conversion cannot fail; fall back to no header if it ever did.
        let header = HeaderValue::from_str(id.as_str()).ok();
        // With tracing on, it also continues the client's `traceparent`.
        let span = crate::telemetry::otel::request_span(&request, &id);
        request.extensions_mut().insert(id);
        let future = span.in_scope(|| self.inner.call(request));
        ResponseFuture {
            inner: future.instrument(span),
            header,
        }
    }
}

pin_project! {
    /// Adds the `X-Request-ID` header to the inner service's response.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: tracing::instrument::Instrumented<F>,
        header: Option<HeaderValue>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.inner.poll(cx))?;
        if let Some(header) = this.header.take() {
            response.headers_mut().insert(X_REQUEST_ID.clone(), header);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{ServiceBuilder, ServiceExt};

    use super::super::{RequestId, RequestIdLayer};

    async fn echo_id(req: http::Request<()>) -> Result<http::Response<String>, Infallible> {
        let id = req.extensions().get::<RequestId>().unwrap().to_string();
        Ok(http::Response::new(id))
    }

    #[tokio::test]
    async fn keeps_sane_client_id() {
        let svc = ServiceBuilder::new()
            .layer(RequestIdLayer)
            .service_fn(echo_id);
        let req = http::Request::builder()
            .header("x-request-id", "client-42")
            .body(())
            .unwrap();
        let res = svc.oneshot(req).await.unwrap();
        assert_eq!(res.headers()["x-request-id"], "client-42");
        assert_eq!(res.body(), "client-42");
    }

    #[tokio::test]
    async fn replaces_insane_client_id() {
        let svc = ServiceBuilder::new()
            .layer(RequestIdLayer)
            .service_fn(echo_id);
        let req = http::Request::builder()
            .header("x-request-id", "has space")
            .body(())
            .unwrap();
        let res = svc.oneshot(req).await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert_ne!(id, "has space");
        assert_eq!(res.body(), &id);
        assert!(uuid::Uuid::parse_str(&id).is_ok());
    }
}
