use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{HeaderMap, Request, Response, header};
use tower::Service;

use super::{ForwardedQuery, copy_forwarded_headers};
use crate::backend::S3Backend;
use crate::body::{ProxyBody, empty};
use crate::error::ProxyError;
use crate::route::ObjectKey;

/// The service made by [`super::S3RequestLayer`].
#[derive(Debug, Clone)]
pub struct S3Request<S> {
    pub(super) inner: S,
    pub(super) backend: Arc<S3Backend>,
}

/// Builds the upstream request, moving the extensions over.
fn rewrite<B>(backend: &S3Backend, request: Request<B>) -> Result<Request<ProxyBody>, ProxyError> {
    let query = ForwardedQuery::of(&request).encode();
    let (parts, _body) = request.into_parts();
    let key = parts
        .extensions
        .get::<ObjectKey>()
        .ok_or_else(|| ProxyError::Internal("S3 request needs a key".into()))?;
    let uri = backend.object_uri(&key.0, &query)?;

    let mut headers = HeaderMap::with_capacity(8);
    headers.insert(header::HOST, backend.host().clone());
    copy_forwarded_headers(&parts.headers, &mut headers);

    let mut upstream = Request::new(empty());
    *upstream.method_mut() = parts.method;
    *upstream.uri_mut() = uri;
    *upstream.headers_mut() = headers;
    *upstream.extensions_mut() = parts.extensions;
    Ok(upstream)
}

impl<S, B> Service<Request<B>> for S3Request<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = Either<Ready<Result<Response<ProxyBody>, ProxyError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match rewrite(&self.backend, request) {
            Ok(upstream) => Either::Right(self.inner.call(upstream)),
            Err(e) => Either::Left(ready(Err(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowlisted_headers_and_params_survive() {
        let backend = S3Backend::for_tests();
        let mut request = Request::builder()
            .uri("/b/a%20b?acl&versionId=7&token=secret")
            .header("range", "bytes=0-1")
            .header("if-none-match", "\"x\"")
            .header("authorization", "Bearer secret")
            .header("cookie", "s=1")
            .header("host", "evil")
            .header("x-amz-acl", "public-read")
            .body(())
            .unwrap();
        request.extensions_mut().insert(ObjectKey("a b".into()));
        let upstream = rewrite(&backend, request).unwrap();
        assert_eq!(
            upstream.uri().to_string(),
            "http://127.0.0.1:9/test-bucket/a%20b?versionId=7"
        );
        let names: Vec<_> = upstream.headers().keys().map(|k| k.as_str()).collect();
        assert_eq!(names, ["host", "range", "if-none-match"]);
        assert_eq!(upstream.headers()["host"], "127.0.0.1:9");
    }

    #[test]
    fn a_multi_range_is_never_sent_to_s3() {
        let backend = S3Backend::for_tests();
        let mut request = Request::builder()
            .uri("/b/k")
            .header("range", "bytes=0-1,5-9")
            .header("if-range", "\"x\"")
            .body(())
            .unwrap();
        request.extensions_mut().insert(ObjectKey("k".into()));
        let upstream = rewrite(&backend, request).unwrap();
        assert!(upstream.headers().get("range").is_none());
        let mut single = Request::builder()
            .uri("/b/k")
            .header("range", "bytes=5-9")
            .body(())
            .unwrap();
        single.extensions_mut().insert(ObjectKey("k".into()));
        let upstream = rewrite(&backend, single).unwrap();
        assert_eq!(upstream.headers()["range"], "bytes=5-9");
    }
}
