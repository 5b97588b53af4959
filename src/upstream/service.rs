use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderName, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::time::Instant;
use tower::Service;

use super::{IdleTimeoutBody, parse_s3_error};
use crate::body::{ProxyBody, boxed};
use crate::error::ProxyError;
use crate::route::BucketRoute;
use crate::telemetry::metrics::UPSTREAM_REQUESTS_TOTAL;

/// Largest S3 error document read to find its code.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// The leaf service: sends the signed request through the bucket's pooled client.
#[derive(Debug, Clone)]
pub struct Upstream {
    timeout: Duration,
}

impl Upstream {
    /// `timeout` bounds the wait for S3's response headers (504 past it) and
    /// any stall of the response body.
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
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
        let timeout = self.timeout;
        Box::pin(async move {
            let route = request
                .extensions()
                .get::<Arc<BucketRoute>>()
                .cloned()
                .ok_or_else(|| ProxyError::Internal("upstream needs a route".into()))?;
            send(&route, request, timeout).await
        })
    }
}

async fn send(
    route: &BucketRoute,
    request: Request<ProxyBody>,
    timeout: Duration,
) -> Result<Response<ProxyBody>, ProxyError> {
    let is_head = request.method() == http::Method::HEAD;
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, route.backend.client.request(request)).await;
    let elapsed = started.elapsed().as_secs_f64();
    route.metrics.upstream_duration.record(elapsed);
    let response = match outcome {
        Err(_) => {
            let bucket = route.metrics.label();
            metrics::counter!(UPSTREAM_REQUESTS_TOTAL, "bucket" => bucket, "status" => "timeout")
                .increment(1);
            return Err(ProxyError::Timeout(timeout));
        }
        Ok(Err(error)) => {
            let bucket = route.metrics.label();
            metrics::counter!(UPSTREAM_REQUESTS_TOTAL, "bucket" => bucket, "status" => "error")
                .increment(1);
            return Err(if error.is_connect() {
                ProxyError::Connect(Box::new(error))
            } else {
                ProxyError::UpstreamProtocol(Box::new(error))
            });
        }
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    route.metrics.count_upstream(status);

    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let (parts, body) = response.into_parts();
        let mut out = Response::new(boxed(IdleTimeoutBody::new(body, timeout)));
        *out.status_mut() = status;
        forward_response_headers(&parts.headers, out.headers_mut());
        return Ok(out);
    }
    Err(s3_error(status, response.into_body(), is_head, timeout).await)
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

/// Response headers from S3 that reach the client; everything else (S3
/// request ids, `Server`, hop-by-hop headers) stays behind.
const FORWARDED: [HeaderName; 11] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::ETAG,
    header::LAST_MODIFIED,
    header::CACHE_CONTROL,
    header::CONTENT_DISPOSITION,
    header::CONTENT_ENCODING,
    header::CONTENT_LANGUAGE,
    header::EXPIRES,
];

/// Copies the allowlisted S3 response headers (plus `x-amz-meta-*` and
/// `x-amz-version-id`) into `to`.
pub fn forward_response_headers(from: &HeaderMap, to: &mut HeaderMap) {
    // One pass over what S3 sent (a handful of headers) rather than a lookup
    // per allowlisted name: it runs on every proxied response.
    for (name, value) in from {
        if FORWARDED.contains(name) || is_forwarded_amz(name.as_str()) {
            to.append(name.clone(), value.clone());
        }
    }
}

/// The `x-amz-*` response headers that describe the object.
fn is_forwarded_amz(name: &str) -> bool {
    name.starts_with("x-amz-meta-") || name == "x-amz-version-id"
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
            from.insert(HeaderName::from_static(k), v.parse().unwrap());
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
