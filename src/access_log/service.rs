use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use metrics::Gauge;
use tokio::time::Instant;
use tower::Service;

use super::body::SlowTiming;
use super::body::{Finish, Logged};
use super::{ClientAddr, LogContext, SharedLogContext};
use crate::body::{ProxyBody, WatchedBody};
use crate::on_response::{OnResponse, OnResponseFuture};
use crate::request_id::RequestId;
use crate::telemetry::metrics::method_label;
use crate::telemetry::otel::slow;

/// The service made by [`super::AccessLogLayer`].
#[derive(Debug, Clone)]
pub struct AccessLogService<S> {
    pub(super) inner: S,
    /// `yatagarasu_http_requests_in_flight`.
    pub(super) in_flight: Gauge,
}

impl<S, B> Service<Request<B>> for AccessLogService<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>>,
{
    type Response = Response<ProxyBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        // The audit log, further out, may have made the context already.
        let context = match request.extensions().get::<SharedLogContext>() {
            Some(context) => context.clone(),
            None => {
                let context: SharedLogContext = Arc::new(LogContext::default());
                request.extensions_mut().insert(context.clone());
                context
            }
        };
        self.in_flight.increment(1.0);
        let finish = Finish {
            start: Instant::now(),
            method: method_label(request.method()),
            is_head: request.method() == http::Method::HEAD,
            // The path only: query strings may carry tokens.
            path: request.uri().path().into(),
            client: request.extensions().get::<ClientAddr>().map(|c| c.0),
            context,
            span: tracing::Span::current(),
            in_flight: self.in_flight.clone(),
            // The slow-request log names the request (`otel::slow`).
            slow: slow::enabled().then(|| SlowTiming {
                request_id: request.extensions().get::<RequestId>().cloned(),
                head_after: None,
            }),
        };
        OnResponseFuture::new(self.inner.call(request), Some(finish))
    }
}

/// The response future of [`AccessLogService`]: the response's body is
/// watched so the request is logged when it ends.
pub type ResponseFuture<F> = OnResponseFuture<F, Finish>;

impl OnResponse for Finish {
    fn on_response(mut self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        if let Some(slow) = &mut self.slow {
            slow.head_after = Some(self.start.elapsed());
        }
        let status = response.status();
        response.map(|body| WatchedBody::wrap(body, Logged::new(self, status)))
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.in_flight.decrement(1.0);
    }
}
