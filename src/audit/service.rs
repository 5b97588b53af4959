use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{Request, Response, header};
use pin_project_lite::pin_project;
use tower::Service;

use super::body::{Audited, Pending};
use super::record;
use super::sink::AuditSink;
use crate::access_log::{ClientAddr, LogContext, SharedLogContext};
use crate::body::{ProxyBody, WatchedBody};
use crate::cache::X_CACHE;
use crate::error::ErrorAnswer;
use crate::request_id::RequestId;
use crate::telemetry::metrics::method_label;

/// `X-Correlation-ID`: a client's own id for a chain of requests.
const X_CORRELATION_ID: header::HeaderName = header::HeaderName::from_static("x-correlation-id");

/// The service made by [`super::AuditLayer`].
#[derive(Debug, Clone)]
pub struct AuditService<S> {
    pub(super) inner: S,
    pub(super) sink: Option<Arc<AuditSink>>,
}

impl<S, B> Service<Request<B>> for AuditService<S>
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
        let Some(sink) = &self.sink else {
            return ResponseFuture {
                inner: self.inner.call(request),
                pending: None,
            };
        };
        // The access log (inside) fills this context; the audit reads it.
        let context: SharedLogContext = Arc::new(LogContext::default());
        context.want_details();
        request.extensions_mut().insert(context.clone());
        let headers = request.headers();
        let pending = Pending {
            sink: sink.clone(),
            context,
            timestamp: SystemTime::now(),
            request_id: request.extensions().get::<RequestId>().cloned(),
            correlation_id: headers
                .get(&X_CORRELATION_ID)
                .and_then(|v| v.to_str().ok())
                .and_then(RequestId::parse),
            peer: request.extensions().get::<ClientAddr>().map(|c| c.0.ip()),
            method: method_label(request.method()),
            path: record::path(request.uri().path()),
            user_agent: record::header(headers, header::USER_AGENT),
            referer: record::header(headers, header::REFERER),
            cache_status: None,
            error: None,
            status: http::StatusCode::OK,
        };
        ResponseFuture {
            inner: self.inner.call(request),
            pending: Some(pending),
        }
    }
}

pin_project! {
    /// Wraps the response body so the record is written when it ends.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        pending: Option<Pending>,
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, E>>,
{
    type Output = Result<Response<ProxyBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let Some(mut pending) = this.pending.take() else {
            return Poll::Ready(result);
        };
        Poll::Ready(result.map(|response| {
            pending.status = response.status();
            pending.cache_status = response
                .headers()
                .get(&X_CACHE)
                .and_then(|v| v.to_str().ok())
                .map(|v| record::cut(v, 64));
            pending.error = response.extensions().get::<ErrorAnswer>().copied();
            response.map(|body| WatchedBody::wrap(body, Audited(pending)))
        }))
    }
}
