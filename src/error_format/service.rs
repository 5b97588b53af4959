use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use tower::Service;

use crate::body::ProxyBody;
use crate::error::{ErrorFormat, ProxyError};
use crate::request_id::RequestId;

/// The service made by [`super::ErrorFormatLayer`].
#[derive(Debug, Clone)]
pub struct BucketErrorFormat<S> {
    pub(super) inner: S,
    /// `errors: s3_xml` (else `json`).
    pub(super) xml: bool,
}

impl<S, B> Service<Request<B>> for BucketErrorFormat<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Taken before the request moves on: the URI is shared bytes, the id an `Arc`.
        let format = if self.xml {
            ErrorFormat::s3_xml(&request)
        } else {
            ErrorFormat::Json
        };
        let id = request.extensions().get::<RequestId>().cloned();
        ResponseFuture {
            inner: self.inner.call(request),
            format,
            id,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`BucketErrorFormat`]: an error becomes the
    /// bucket's answer (logged like the rescue layer's).
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        format: ErrorFormat,
        id: Option<RequestId>,
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, ProxyError>>,
{
    type Output = Result<Response<ProxyBody>, ProxyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        Poll::Ready(match ready!(this.inner.poll(cx)) {
            Ok(response) => Ok(response),
            Err(error) => Ok(crate::rescue::render(error, this.id.as_ref(), this.format)),
        })
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tower::{ServiceBuilder, ServiceExt};

    use super::super::ErrorFormatLayer;
    use super::*;

    async fn answer(xml: bool, headers: &[(&str, &str)]) -> (String, String) {
        let service = ServiceBuilder::new()
            .layer(ErrorFormatLayer { xml })
            .service_fn(|_: Request<()>| async {
                Err::<Response<ProxyBody>, _>(ProxyError::PreconditionFailed)
            });
        let mut request = Request::builder().uri("/site/k");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = service.oneshot(request.body(()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 412);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (content_type, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn the_bucket_format_wins_over_detection() {
        let (content_type, body) = answer(true, &[]).await;
        assert_eq!(content_type, "application/xml");
        assert!(body.contains("<Code>PreconditionFailed</Code>"), "{body}");
        assert!(body.contains("<Resource>/site/k</Resource>"), "{body}");
        let (content_type, body) = answer(false, &[("x-amz-content-sha256", "UNSIGNED")]).await;
        assert_eq!(content_type, "application/json");
        assert!(body.contains("\"PreconditionFailed\""), "{body}");
    }
}
