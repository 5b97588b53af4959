use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures_util::future::{Either, Ready, ready};
use http::{Request, Response};
use tower::Service;

use crate::backend::S3Backend;
use crate::body::ProxyBody;
use crate::error::ProxyError;

/// The service made by [`super::SigV4Layer`].
#[derive(Debug, Clone)]
pub struct SigV4<S> {
    pub(super) inner: S,
    pub(super) backend: Arc<S3Backend>,
}

impl<S, B> Service<Request<B>> for SigV4<S>
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
        let backend = &self.backend;
        let signed = backend
            .signatures
            .sign(&mut request, backend, SystemTime::now());
        match signed {
            Ok(_) => Either::Right(self.inner.call(request)),
            Err(e) => Either::Left(ready(Err(e))),
        }
    }
}
