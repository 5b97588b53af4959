use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{Request, Response};
use tower::Service;

use super::{BucketRoute, ObjectKey, RouteTable};
use crate::access_log::SharedLogContext;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::limits::SafePath;

/// The service made by [`super::RouteLayer`].
#[derive(Debug, Clone)]
pub struct Route<S> {
    pub(super) inner: S,
    pub(super) table: Arc<RouteTable>,
}

impl<S> Route<S> {
    fn resolve<B>(&self, request: &mut Request<B>) -> Result<(), ProxyError> {
        let path = request
            .extensions()
            .get::<SafePath>()
            .ok_or_else(|| ProxyError::Internal("routing needs a sanitized path".into()))?;
        let (route, key) = self.table.lookup(&path.0).ok_or(ProxyError::NoRoute)?;
        if let Some(context) = request.extensions().get::<SharedLogContext>() {
            context.set_bucket(route.metrics.clone());
        }
        if key.is_empty() {
            return Err(ProxyError::EmptyKey);
        }
        let key = ObjectKey(key.to_owned());
        let route: Arc<BucketRoute> = route.clone();
        request.extensions_mut().insert(route);
        request.extensions_mut().insert(key);
        Ok(())
    }
}

impl<S, B> Service<Request<B>> for Route<S>
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
        match self.resolve(&mut request) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(e) => Either::Left(ready(Err(e))),
        }
    }
}
