use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{Request, Response};
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

use super::{BucketRoute, ObjectKey, RouteTable};
use crate::access_log::SharedLogContext;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::limits::SafePath;

/// What a bucket's stack is: a cloneable, thread-safe service from
/// request to response whose futures can be spawned.
///
/// Named once so the stack builder and the layers that box their inner
/// service state the same bounds.
pub trait BucketService:
    Service<
        Request<ProxyBody>,
        Response = Response<ProxyBody>,
        Error = ProxyError,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> BucketService for S where
    S: Service<
            Request<ProxyBody>,
            Response = Response<ProxyBody>,
            Error = ProxyError,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// One bucket mounted in the route table: its route and its own stack.
#[derive(Debug)]
pub struct Mounted<S> {
    /// The bucket as the request path sees it (inserted as an extension).
    pub route: Arc<BucketRoute>,
    /// The bucket's stack, cloned for each request.
    pub service: S,
}

/// Dispatches each request to the stack of the bucket its path names
/// (404 when nothing matches).
#[derive(Debug)]
pub struct Route<S> {
    table: Arc<RouteTable<Mounted<S>>>,
}

impl<S> Clone for Route<S> {
    fn clone(&self) -> Self {
        Self {
            table: self.table.clone(),
        }
    }
}

impl<S> Route<S> {
    /// Routes with `table`.
    pub fn new(table: Arc<RouteTable<Mounted<S>>>) -> Self {
        Self { table }
    }
}

impl<S: Clone> Route<S> {
    /// Inserts the route and key extensions and returns the bucket's stack.
    fn resolve<B>(&self, request: &mut Request<B>) -> Result<S, ProxyError> {
        let path = request
            .extensions()
            .get::<SafePath>()
            .ok_or_else(|| ProxyError::Internal("routing needs a sanitized path".into()))?;
        let (mounted, key) = self.table.lookup(&path.0).ok_or(ProxyError::NoRoute)?;
        if let Some(context) = request.extensions().get::<SharedLogContext>() {
            context.set_bucket(mounted.route.metrics.clone());
        }
        // The request span's `http.route` (OpenTelemetry, when tracing is on).
        crate::telemetry::otel::record_route(request.method(), &mounted.route.path_prefix);
        if key.is_empty() && !mounted.route.serves_bare_prefix {
            return Err(ProxyError::EmptyKey);
        }
        if let Some(context) = request.extensions().get::<SharedLogContext>() {
            context.set_object_key(key);
        }
        let key = ObjectKey(key.to_owned());
        let service = mounted.service.clone();
        request.extensions_mut().insert(mounted.route.clone());
        request.extensions_mut().insert(key);
        Ok(service)
    }
}

impl<S, B> Service<Request<B>> for Route<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError> + Clone,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = Either<Ready<Result<Response<ProxyBody>, ProxyError>>, Oneshot<S, Request<B>>>;

    /// Always ready: the bucket's stack is driven to readiness inside the
    /// response future (each request has its own clone of it).
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        match self.resolve(&mut request) {
            Ok(service) => Either::Right(service.oneshot(request)),
            Err(e) => Either::Left(ready(Err(e))),
        }
    }
}
