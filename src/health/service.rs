use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use tower::Service;

use super::HealthLayer;
use crate::access_log::SharedLogContext;
use crate::body::{ProxyBody, empty, full};
use crate::error::ProxyError;

/// The service made by [`super::HealthLayer`].
#[derive(Debug, Clone)]
pub struct Health<S> {
    pub(super) inner: S,
    pub(super) config: HealthLayer,
}

impl<S> Health<S> {
    fn health(&self) -> (StatusCode, serde_json::Value) {
        let body = serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_seconds": self.config.uptime_seconds(),
        });
        (StatusCode::OK, body)
    }

    fn ready(&self) -> (StatusCode, serde_json::Value) {
        let readiness = self.config.readiness();
        let buckets = readiness.snapshot(self.config.buckets());
        if readiness.is_shutting_down() {
            let body = serde_json::json!({
                "status": "not_ready", "reason": "shutting down", "buckets": buckets,
            });
            return (StatusCode::SERVICE_UNAVAILABLE, body);
        }
        let keys_not_loaded = readiness.keys_not_loaded();
        let all_up = buckets.values().all(|b| b.up) && keys_not_loaded.is_empty();
        let (status, text) = if all_up {
            (StatusCode::OK, "ready")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
        };
        let mut body = serde_json::json!({ "status": text, "buckets": buckets });
        if !keys_not_loaded.is_empty() {
            // Private buckets whose JWKS has not been fetched yet cannot verify tokens.
            body["keys_not_loaded"] = serde_json::json!(keys_not_loaded);
        }
        (status, body)
    }
}

fn json(status: StatusCode, body: serde_json::Value, head: bool) -> Response<ProxyBody> {
    let text = body.to_string();
    let length = text.len();
    let mut response = Response::new(if head { empty() } else { full(text) });
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

impl<S, B> Service<Request<B>> for Health<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = Either<Ready<Result<Response<ProxyBody>, ProxyError>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let head = request.method() == Method::HEAD;
        let probe = match (request.method(), request.uri().path()) {
            (&Method::GET | &Method::HEAD, super::HEALTH_PATH) => Some(self.health()),
            (&Method::GET | &Method::HEAD, super::READY_PATH) => Some(self.ready()),
            _ => None,
        };
        match probe {
            Some((status, body)) => {
                if let Some(context) = request.extensions().get::<SharedLogContext>() {
                    context.mark_probe();
                }
                Either::Left(ready(Ok(json(status, body, head))))
            }
            None => Either::Right(self.inner.call(request)),
        }
    }
}
