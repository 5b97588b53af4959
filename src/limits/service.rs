use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{Method, Request, Response};
use tower::Service;

use super::{SafePath, SecurityLimitsConfig, sanitize_path};
use crate::body::ProxyBody;
use crate::error::{Limit, ProxyError};
use crate::telemetry::metrics::SECURITY_LIMIT_REJECTIONS_TOTAL;

/// The service made by [`super::SecurityLimitsLayer`].
#[derive(Debug, Clone)]
pub struct SecurityLimits<S> {
    pub(super) inner: S,
    pub(super) limits: SecurityLimitsConfig,
    /// Whether CORS preflights pass (see [`super::SecurityLimitsLayer::with_preflights`]).
    pub(super) preflights: bool,
}

/// The first limit `request` exceeds, if any.
fn exceeded<B>(limits: &SecurityLimitsConfig, request: &Request<B>) -> Option<Limit> {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri > limits.max_uri_length {
        return Some(Limit::UriLength);
    }
    let headers = request.headers();
    if headers.len() > limits.max_headers {
        return Some(Limit::HeaderCount);
    }
    // As sent on HTTP/1.1: `name: value` and CRLF.
    let size: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if size > limits.max_header_size {
        return Some(Limit::HeaderSize);
    }
    if body_too_large(limits.max_body_size, headers) {
        return Some(Limit::BodySize);
    }
    None
}

/// An announced length beyond the limit, or a body of unannounced length
/// (chunked) when no body is allowed. An unreadable `Content-Length` is
/// left to the HTTP parser, which refuses it.
fn body_too_large(max: u64, headers: &http::HeaderMap) -> bool {
    let announced = headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match announced {
        Some(length) => length > max,
        None => max == 0 && headers.contains_key(http::header::TRANSFER_ENCODING),
    }
}

impl<S, B> Service<Request<B>> for SecurityLimits<S>
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
        let method = request.method();
        let preflight = || self.preflights && crate::cors::is_preflight(&request);
        if method != Method::GET && method != Method::HEAD && !preflight() {
            let method = request.method().clone();
            return Either::Left(ready(Err(ProxyError::MethodNotAllowed(method))));
        }
        if let Some(limit) = exceeded(&self.limits, &request) {
            metrics::counter!(SECURITY_LIMIT_REJECTIONS_TOTAL, "reason" => limit.label())
                .increment(1);
            return Either::Left(ready(Err(ProxyError::LimitExceeded(limit))));
        }
        match sanitize_path(request.uri().path()) {
            Ok(path) => {
                request.extensions_mut().insert(SafePath(path));
                Either::Right(self.inner.call(request))
            }
            Err(e) => Either::Left(ready(Err(ProxyError::InvalidPath(e.message())))),
        }
    }
}

#[cfg(test)]
mod tests {
    use tower::{ServiceBuilder, ServiceExt};

    use super::super::{SafePath, SecurityLimitsConfig, SecurityLimitsLayer};
    use crate::body::{ProxyBody, full};
    use crate::error::ProxyError;

    async fn echo(req: http::Request<()>) -> Result<http::Response<ProxyBody>, ProxyError> {
        let path = req.extensions().get::<SafePath>().unwrap().0.clone();
        Ok(http::Response::new(full(path)))
    }

    async fn call(method: &str, uri: &str) -> Result<http::Response<ProxyBody>, ProxyError> {
        let svc = ServiceBuilder::new()
            .layer(SecurityLimitsLayer::default())
            .service_fn(echo);
        let req = http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap();
        svc.oneshot(req).await
    }

    #[tokio::test]
    async fn only_get_and_head_pass() {
        assert!(call("GET", "/b/k").await.is_ok());
        assert!(call("HEAD", "/b/k").await.is_ok());
        for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            let err = call(method, "/b/k").await.unwrap_err();
            assert_eq!(err.status(), 405, "{method}");
        }
    }

    #[tokio::test]
    async fn cors_preflights_pass_only_when_allowed() {
        let preflight = || {
            http::Request::options("/b/k")
                .header("origin", "https://a.example")
                .header("access-control-request-method", "GET")
                .body(())
                .unwrap()
        };
        let layer = |allowed| {
            ServiceBuilder::new()
                .layer(SecurityLimitsLayer::default().with_preflights(allowed))
                .service_fn(echo)
        };
        let refused = layer(false).oneshot(preflight()).await.unwrap_err();
        assert_eq!(refused.status(), 405);
        assert!(layer(true).oneshot(preflight()).await.is_ok());
        // An OPTIONS that is not a preflight stays refused.
        let plain = http::Request::options("/b/k")
            .header("origin", "https://a.example")
            .body(())
            .unwrap();
        let refused = layer(true).oneshot(plain).await.unwrap_err();
        assert_eq!(refused.status(), 405);
    }

    async fn call_with(
        limits: SecurityLimitsConfig,
        request: http::Request<()>,
    ) -> Result<http::Response<ProxyBody>, ProxyError> {
        let svc = ServiceBuilder::new()
            .layer(SecurityLimitsLayer::new(limits))
            .service_fn(echo);
        svc.oneshot(request).await
    }

    fn get(uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
        let mut request = http::Request::get(uri);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap()
    }

    #[tokio::test]
    async fn each_size_limit_has_its_status_and_the_limit_itself_passes() {
        let limits = SecurityLimitsConfig {
            max_uri_length: 10,
            max_header_size: 30,
            max_body_size: 5,
            max_headers: 2,
        };
        let status = |r: Result<http::Response<ProxyBody>, ProxyError>| match r {
            Ok(response) => response.status().as_u16(),
            Err(e) => e.status().as_u16(),
        };
        // Exactly at each limit.
        assert_eq!(status(call_with(limits, get("/b/k?a=123", &[])).await), 200);
        let at_size = [("a", "1"), ("b", "0123456789abcdefghi")]; // 6 + 24 bytes
        assert_eq!(status(call_with(limits, get("/b/k", &at_size)).await), 200);
        let at_body = [("content-length", "5")];
        assert_eq!(status(call_with(limits, get("/b/k", &at_body)).await), 200);
        // One past each.
        assert_eq!(
            status(call_with(limits, get("/b/k?a=1234", &[])).await),
            414
        );
        let three = [("a", "1"), ("b", "2"), ("c", "3")];
        assert_eq!(status(call_with(limits, get("/b/k", &three)).await), 431);
        let over_size = [("a", "1"), ("b", "0123456789abcdefghij")];
        assert_eq!(
            status(call_with(limits, get("/b/k", &over_size)).await),
            431
        );
        let over_body = [("content-length", "6")];
        assert_eq!(
            status(call_with(limits, get("/b/k", &over_body)).await),
            413
        );
    }

    #[tokio::test]
    async fn a_body_of_unannounced_length_is_refused_when_none_is_allowed() {
        let chunked = [("transfer-encoding", "chunked")];
        let limits = SecurityLimitsConfig::default();
        let err = call_with(limits, get("/b/k", &chunked)).await.unwrap_err();
        assert_eq!(err.status(), 413);
        let zero = [("content-length", "0")];
        assert!(call_with(limits, get("/b/k", &zero)).await.is_ok());
    }

    #[tokio::test]
    async fn traversal_is_a_400() {
        let err = call("GET", "/b/%2e%2e/x").await.unwrap_err();
        assert_eq!(err.status(), 400);
    }
}
