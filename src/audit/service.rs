use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::{Request, Response, header};
use tower::Service;

use super::body::{Audited, Pending};
use super::record;
use super::sink::AuditSink;
use crate::access_log::{ClientAddr, LogContext, SharedLogContext};
use crate::body::{ProxyBody, WatchedBody};
use crate::cache::X_CACHE;
use crate::error::ErrorAnswer;
use crate::on_response::{OnResponse, OnResponseFuture};
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
            return OnResponseFuture::new(self.inner.call(request), None);
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
        OnResponseFuture::new(self.inner.call(request), Some(pending))
    }
}

/// The response future of [`AuditService`]: the response's body is
/// watched so the record is written when it ends.
pub type ResponseFuture<F> = OnResponseFuture<F, Pending>;

impl OnResponse for Pending {
    fn on_response(mut self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        self.status = response.status();
        self.cache_status = response
            .headers()
            .get(&X_CACHE)
            .and_then(|v| v.to_str().ok())
            .map(|v| record::cut(v, 64));
        self.error = response.extensions().get::<ErrorAnswer>().copied();
        response.map(|body| WatchedBody::wrap(body, Audited(self)))
    }
}
