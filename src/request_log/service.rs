use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::time::Instant;
use tower::Service;

use super::body::Captured;
use super::headers::render;
use super::{RequestLogConfig, TARGET};
use crate::body::{ProxyBody, WatchedBody};
use crate::on_response::{OnResponse, OnResponseFuture};
use crate::request_id::RequestId;

/// The service made by [`super::RequestLogLayer`].
#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    pub(super) inner: S,
    pub(super) config: Arc<RequestLogConfig>,
}

impl<S, B> Service<Request<B>> for RequestLog<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>>,
{
    type Response = Response<ProxyBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let config = &self.config;
        let path = request.uri().path();
        if !config.paths.admits(path) {
            return OnResponseFuture::new(self.inner.call(request), None);
        }
        let exchange = Exchange {
            request_id: request.extensions().get::<RequestId>().cloned(),
            method: request.method().clone(),
            path: path.into(),
            start: Instant::now(),
            config: config.clone(),
            span: tracing::Span::current(),
        };
        if config.log_requests {
            exchange.log_request(&request);
        }
        let pending = config.log_responses.then_some(exchange);
        OnResponseFuture::new(self.inner.call(request), pending)
    }
}

/// What the request log keeps of a request for its response line.
pub struct Exchange {
    request_id: Option<RequestId>,
    method: http::Method,
    path: Box<str>,
    start: Instant,
    config: Arc<RequestLogConfig>,
    /// The request span, for the response line (written outside it).
    span: tracing::Span,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    /// How many body bytes the response line carries at most.
    pub(super) fn max_body_size(&self) -> usize {
        self.config.max_body_size
    }

    fn request_id(&self) -> &str {
        self.request_id.as_ref().map_or("-", RequestId::as_str)
    }

    fn log_request<B>(&self, request: &Request<B>) {
        let client = crate::client_addr::client_ip(request.extensions());
        let headers = render(request.headers(), &self.config);
        tracing::info!(
            target: TARGET,
            request_id = self.request_id(),
            method = self.method.as_str(),
            path = &*self.path,
            client = client.map(tracing::field::display),
            headers = ?headers,
            "request received"
        );
    }

    /// The response line; `body` is `(text, truncated)` when bodies are logged.
    pub(super) fn log_response(
        &self,
        status: http::StatusCode,
        latency: std::time::Duration,
        headers: &[String],
        body: Option<(&str, bool)>,
    ) {
        let _entered = self.span.enter();
        tracing::info!(
            target: TARGET,
            request_id = self.request_id(),
            method = self.method.as_str(),
            path = &*self.path,
            status = status.as_u16(),
            latency_ms = latency.as_secs_f64() * 1000.0,
            headers = ?headers,
            body = body.map(|(text, _)| text),
            body_truncated = body.map(|(_, truncated)| truncated),
            "response sent"
        );
    }
}

/// The response future of [`RequestLog`]: the response line is written
/// from the head, or from the body once its first bytes have been sent.
pub type ResponseFuture<F> = OnResponseFuture<F, Exchange>;

impl OnResponse for Exchange {
    fn on_response(self, response: Response<ProxyBody>) -> Response<ProxyBody> {
        let status = response.status();
        if !self.config.admits_status(status) {
            return response;
        }
        let latency = self.start.elapsed();
        let headers = render(response.headers(), &self.config);
        if !self.config.log_response_body {
            self.log_response(status, latency, &headers, None);
            return response;
        }
        let captured = Captured::new(self, status, latency, headers);
        response.map(|body| WatchedBody::wrap(body, captured))
    }
}
