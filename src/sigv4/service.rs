use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use futures_util::future::{Either, Ready, ready};
use http::{Request, Response};
use tower::Service;

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::route::BucketRoute;

/// The service made by [`super::SigV4Layer`].
#[derive(Debug, Clone)]
pub struct SigV4<S> {
    pub(super) inner: S,
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
        let signed = match request.extensions().get::<Arc<BucketRoute>>().cloned() {
            Some(route) => route
                .backend
                .signatures
                .sign(&mut request, &route.backend, SystemTime::now())
                .map(drop),
            None => Err(ProxyError::Internal("signing needs a route".into())),
        };
        match signed {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(e) => Either::Left(ready(Err(e))),
        }
    }
}
