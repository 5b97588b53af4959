use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{Request, Response};
use tokio::sync::Semaphore;
use tower::Service;

use crate::access_log::SharedLogContext;
use crate::body::ProxyBody;
use crate::error::{ErrorFormat, ProxyError};
use crate::health::is_probe_path;
use crate::request_id::RequestId;
use crate::telemetry::metrics::LOAD_SHED_TOTAL;

/// The service made by [`super::LoadShedLayer`].
#[derive(Debug, Clone)]
pub struct LoadShed<S> {
    pub(super) inner: S,
    pub(super) permits: Option<Arc<Semaphore>>,
}

impl<S, B> Service<Request<B>> for LoadShed<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>>,
{
    type Response = Response<ProxyBody>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Response<ProxyBody>, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let Some(permits) = &self.permits else {
            return Either::Right(self.inner.call(request));
        };
        // Probes answer whatever the load (see the module docs).
        if is_probe_path(request.uri().path()) {
            return Either::Right(self.inner.call(request));
        }
        let context = request.extensions().get::<SharedLogContext>();
        match (permits.clone().try_acquire_owned(), context) {
            (Ok(permit), Some(context)) => {
                context.hold(permit);
                Either::Right(self.inner.call(request))
            }
            // Without an access log around it there is no body guard to
            // hold the permit, so it is given back at once: only a full set
            // of permits (taken by requests that have one) sheds.
            (Ok(_permit), None) => Either::Right(self.inner.call(request)),
            (Err(_), _) => {
                metrics::counter!(LOAD_SHED_TOTAL).increment(1);
                let id = request.extensions().get::<RequestId>();
                let format = ErrorFormat::detect(&request);
                let response = ProxyError::Overloaded.into_response_as(id, &format);
                Either::Left(ready(Ok(response)))
            }
        }
    }
}
