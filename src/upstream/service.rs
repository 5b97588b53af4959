use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tower::Service;

use super::cap::{Lease, PermitBody};
use super::{ConnectionCap, IdleTimeoutBody, parse_s3_error};
use crate::backend::S3Backend;
use crate::body::{ProxyBody, boxed};
use crate::error::ProxyError;
use crate::headers::is_forwarded_response_header;
use crate::telemetry::metrics::{BucketMetrics, UPSTREAM_REQUESTS_TOTAL};
use crate::telemetry::otel::phase::{Phase, PhaseTimer};
use crate::telemetry::otel::{self, Attempt, SPAN_TARGET};

/// Largest S3 error document read to find its code.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The leaf service: sends the signed request through the bucket's pooled client.
#[derive(Debug, Clone)]
pub struct Upstream {
    backend: Arc<S3Backend>,
    metrics: Arc<BucketMetrics>,
    timeout: Duration,
    /// The bucket's share of the upstream connections; `None`: no cap.
    cap: Option<ConnectionCap>,
    /// The target's name (`primary`, a replica's, `fallback_on_404`): the
    /// `replica` attribute of its spans.
    replica: Option<Arc<str>>,
}

impl Upstream {
    /// Sends to `backend` through its pooled client and records into the
    /// bucket's `metrics`. `timeout` bounds the wait for S3's response
    /// headers (504 past it) and any stall of the response body.
    pub fn new(backend: Arc<S3Backend>, metrics: Arc<BucketMetrics>, timeout: Duration) -> Self {
        Self {
            backend,
            metrics,
            timeout,
            cap: None,
            replica: None,
        }
    }

    /// Names the target in its upstream spans.
    pub fn with_replica(mut self, name: Arc<str>) -> Self {
        self.replica = Some(name);
        self
    }

    /// Holds a permit of `cap` (the bucket's, shared by every service that
    /// sends for it) from before each request is sent until its response
    /// body ends; `None` leaves requests uncapped.
    pub fn with_connection_cap(mut self, cap: Option<ConnectionCap>) -> Self {
        self.cap = cap;
        self
    }
}

impl Service<Request<ProxyBody>> for Upstream {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ProxyBody>) -> Self::Future {
        // One child span of the request per attempt, and the slow log's
        // `s3_headers_ms` (each only when on).
        let phase = PhaseTimer::start(Phase::S3Headers, &request, || {
            tracing::info_span!(
                target: SPAN_TARGET,
                "upstream",
                otel.kind = "client",
                bucket = &*self.metrics.name,
                replica = self.replica.as_deref(),
                retry = Attempt::of(&request),
                http.request.method = request.method().as_str(),
                http.response.status_code = tracing::field::Empty,
            )
        });
        let this = self.clone();
        Box::pin(phase.wrap(async move { this.send(request).await }))
    }
}

impl Upstream {
    async fn send(self, request: Request<ProxyBody>) -> Result<Response<ProxyBody>, ProxyError> {
        let is_head = request.method() == http::Method::HEAD;
        let permit = match &self.cap {
            Some(cap) => Some(cap.acquire().await?),
            None => None,
        };
        // The connection stays busy until the body ends (or the error is read).
        let lease = Lease::new(permit, self.metrics.upstream_active.clone());
        let response = self.exchange(request).await?;
        let status = response.status();
        if otel::in_trace() {
            tracing::Span::current().record("http.response.status_code", status.as_u16());
        }
        self.metrics.count_upstream(status);
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            let (parts, body) = response.into_parts();
            let body = IdleTimeoutBody::new(body, self.timeout);
            let mut out = Response::new(boxed(PermitBody::new(body, lease)));
            *out.status_mut() = status;
            // `Accept-Ranges` is added above, for every answer path
            // (`crate::accept_ranges`).
            forward_response_headers(&parts.headers, out.headers_mut());
            return Ok(out);
        }
        Err(s3_error(status, response.into_body(), is_head, self.timeout).await)
    }

    /// Sends the request and waits for S3's response headers, within the timeout.
    async fn exchange(
        &self,
        request: Request<ProxyBody>,
    ) -> Result<Response<hyper::body::Incoming>, ProxyError> {
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(self.timeout, self.backend.client.request(request)).await;
        let bucket = &self.metrics;
        bucket
            .upstream_duration
            .record(started.elapsed().as_secs_f64());
        let failure = match outcome {
            Ok(Ok(response)) => return Ok(response),
            Err(_) => ("timeout", ProxyError::Timeout(self.timeout)),
            Ok(Err(error)) if error.is_connect() => ("error", ProxyError::Connect(Box::new(error))),
            Ok(Err(error)) => ("error", ProxyError::UpstreamProtocol(Box::new(error))),
        };
        let (status, error) = failure;
        metrics::counter!(UPSTREAM_REQUESTS_TOTAL, "bucket" => bucket.label(), "status" => status)
            .increment(1);
        Err(error)
    }
}

/// Reads (a bounded prefix of) S3's XML error document and classifies it.
async fn s3_error(
    status: StatusCode,
    body: hyper::body::Incoming,
    is_head: bool,
    timeout: Duration,
) -> ProxyError {
    let (mut code, message) = if is_head {
        (String::new(), String::new())
    } else {
        let limited = http_body_util::Limited::new(body, MAX_ERROR_BODY);
        match tokio::time::timeout(timeout, limited.collect()).await {
            Ok(Ok(collected)) => parse_s3_error(&collected.to_bytes()),
            _ => (String::new(), String::new()),
        }
    };
    if code.is_empty() {
        // HEAD answers carry no body; infer the usual code from the status.
        code = match status {
            StatusCode::NOT_FOUND => "NoSuchKey",
            StatusCode::FORBIDDEN => "AccessDenied",
            StatusCode::PRECONDITION_FAILED => "PreconditionFailed",
            StatusCode::RANGE_NOT_SATISFIABLE => "InvalidRange",
            _ => "",
        }
        .to_owned();
    }
    ProxyError::S3 {
        status,
        code,
        message,
    }
}

/// Copies the allowlisted S3 response headers (plus `x-amz-meta-*` and
/// `x-amz-version-id`) into `to`.
pub fn forward_response_headers(from: &HeaderMap, to: &mut HeaderMap) {
    // One pass over what S3 sent (a handful of headers) rather than a lookup
    // per allowlisted name: it runs on every proxied response.
    for (name, value) in from {
        if is_forwarded_response_header(name) {
            to.append(name.clone(), value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowlisted_headers_are_forwarded() {
        let mut from = HeaderMap::new();
        for (k, v) in [
            ("content-type", "image/png"),
            ("content-length", "10"),
            ("etag", "\"abc\""),
            ("x-amz-meta-owner", "me"),
            ("x-amz-version-id", "v1"),
            ("x-amz-request-id", "REQ"),
            ("x-amz-id-2", "HOST"),
            ("server", "AmazonS3"),
            ("connection", "keep-alive"),
            ("set-cookie", "a=b"),
        ] {
            from.insert(http::HeaderName::from_static(k), v.parse().unwrap());
        }
        let mut to = HeaderMap::new();
        forward_response_headers(&from, &mut to);
        assert_eq!(to.len(), 5);
        assert_eq!(to["x-amz-meta-owner"], "me");
        assert!(to.get("x-amz-request-id").is_none());
        assert!(to.get("server").is_none());
        assert!(to.get("set-cookie").is_none());
    }
}
