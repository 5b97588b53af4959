//! CORS fields on the answers given before a bucket is chosen: a method
//! other than GET/HEAD (405), a request beyond the security limits (414,
//! 431, 413), an unsafe path (400) and a path that names no bucket (404).
//!
//! No bucket's rules apply to them, so the top-level `cors` block does: with
//! an allowed `Origin` such an error answer carries
//! `Access-Control-Allow-Origin` (and the exposed headers), so a page can
//! read why it was refused; every such answer gets `Vary: Origin`. Answers
//! from a bucket's own stack are left alone (its [`super::Cors`] layer, or
//! none when CORS is off there, decided them), and so are preflights: a
//! refused preflight is refused whatever fields it carries.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Method, Request, Response};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::policy::CorsPolicy;
use super::service::Decoration;
use crate::body::ProxyBody;
use crate::config::Config;
use crate::error::{ErrorFormat, ProxyError};
use crate::request_id::RequestId;

/// Adds the top-level `cors` fields to the answers refused before routing.
#[derive(Debug, Clone)]
pub struct UnroutedCorsLayer {
    policy: Arc<CorsPolicy>,
}

impl UnroutedCorsLayer {
    /// The layer of the top-level `cors` block; `None` without one (or with
    /// CORS turned off there).
    pub fn new(config: &Config) -> Option<Self> {
        let cors = config.cors.as_ref().filter(|cors| !cors.is_off())?;
        Some(Self {
            policy: Arc::new(CorsPolicy::new(cors)),
        })
    }
}

impl<S> Layer<S> for UnroutedCorsLayer {
    type Service = UnroutedCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UnroutedCors {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// The service made by [`UnroutedCorsLayer`].
#[derive(Debug, Clone)]
pub struct UnroutedCors<S> {
    inner: S,
    policy: Arc<CorsPolicy>,
}

impl<S, B> Service<Request<B>> for UnroutedCors<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = UnroutedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let decoration = (request.method() != Method::OPTIONS).then(|| Decoration {
            policy: self.policy.clone(),
            origin: self.policy.allow_origin(request.headers()),
            id: request.extensions().get::<RequestId>().cloned(),
            format: ErrorFormat::detect(&request),
        });
        UnroutedFuture {
            future: self.inner.call(request),
            decoration,
        }
    }
}

pin_project! {
    /// The response future of [`UnroutedCors`].
    #[derive(Debug)]
    pub struct UnroutedFuture<F> {
        #[pin]
        future: F,
        decoration: Option<Decoration>,
    }
}

impl<F> Future for UnroutedFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, ProxyError>>,
{
    type Output = Result<Response<ProxyBody>, ProxyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx));
        let error = match result {
            Err(error) if before_routing(&error) => error,
            other => return Poll::Ready(other),
        };
        let Some(decoration) = this.decoration.take() else {
            return Poll::Ready(Err(error));
        };
        Poll::Ready(Ok(decoration.apply(Err(error))))
    }
}

/// The errors answered before a bucket is chosen (security limits and
/// routing); every other error comes from a bucket's stack.
fn before_routing(error: &ProxyError) -> bool {
    matches!(
        error,
        ProxyError::MethodNotAllowed(_)
            | ProxyError::LimitExceeded(_)
            | ProxyError::InvalidPath(_)
            | ProxyError::NoRoute
    )
}

#[cfg(test)]
mod tests {
    use http::{Request, Response};
    use tower::{Layer, ServiceExt};

    use super::UnroutedCorsLayer;
    use crate::body::{ProxyBody, full};
    use crate::error::{Limit, ProxyError};

    const CONFIG: &str = "cors:\n  allowed_origins: [\"https://app.example\"]\n  \
        expose_headers: [x-request-id]\nbuckets:\n  - name: b\n    path_prefix: /b\n    \
        s3: { bucket: bkt, region: us-east-1, access_key: AKIDEXAMPLE, secret_key: secret }\n";

    /// `/limit` is refused by the limits, `/nowhere` by routing, `/bucket`
    /// by a bucket's stack, anything else answers 200.
    async fn answer(request: Request<()>) -> Result<Response<ProxyBody>, ProxyError> {
        match request.uri().path() {
            "/limit" => Err(ProxyError::LimitExceeded(Limit::UriLength)),
            "/nowhere" => Err(ProxyError::NoRoute),
            "/bucket" => Err(ProxyError::MissingToken),
            _ => Ok(Response::new(full("bytes"))),
        }
    }

    async fn call(
        method: &str,
        path: &str,
        origin: Option<&str>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let config = crate::config::Config::from_yaml_str(CONFIG).unwrap();
        let layer = UnroutedCorsLayer::new(&config).unwrap();
        let mut request = Request::builder().method(method).uri(path);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        let service = layer.layer(tower::service_fn(answer));
        service.oneshot(request.body(()).unwrap()).await
    }

    fn field<'a>(response: &'a Response<ProxyBody>, name: &str) -> Option<&'a str> {
        response.headers().get(name).and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn refusals_before_routing_carry_the_default_fields() {
        for path in ["/limit", "/nowhere"] {
            let response = call("GET", path, Some("https://app.example"))
                .await
                .unwrap();
            assert!(response.status().is_client_error(), "{path}");
            let allow = field(&response, "access-control-allow-origin");
            assert_eq!(allow, Some("https://app.example"), "{path}");
            let expose = field(&response, "access-control-expose-headers");
            assert_eq!(expose, Some("x-request-id"), "{path}");
            assert_eq!(field(&response, "vary"), Some("Origin"), "{path}");
        }
    }

    #[tokio::test]
    async fn other_origins_get_only_vary() {
        let response = call("GET", "/nowhere", Some("https://evil.example"))
            .await
            .unwrap();
        assert_eq!(response.status(), 404);
        assert_eq!(field(&response, "access-control-allow-origin"), None);
        assert_eq!(field(&response, "vary"), Some("Origin"));
    }

    #[tokio::test]
    async fn a_buckets_answers_and_preflights_are_left_alone() {
        let error = call("GET", "/bucket", Some("https://app.example"))
            .await
            .unwrap_err();
        assert!(matches!(error, ProxyError::MissingToken), "{error:?}");
        let response = call("GET", "/ok", Some("https://app.example"))
            .await
            .unwrap();
        assert_eq!(field(&response, "access-control-allow-origin"), None);
        let error = call("OPTIONS", "/nowhere", Some("https://app.example"))
            .await
            .unwrap_err();
        assert!(matches!(error, ProxyError::NoRoute), "{error:?}");
    }

    #[test]
    fn no_layer_without_a_default_or_with_cors_off() {
        let without = CONFIG.replace("cors:\n  allowed_origins: [\"https://app.example\"]\n  expose_headers: [x-request-id]\n", "");
        let config = crate::config::Config::from_yaml_str(&without).unwrap();
        assert!(UnroutedCorsLayer::new(&config).is_none());
        let off = CONFIG.replace("[\"https://app.example\"]", "[]");
        let config = crate::config::Config::from_yaml_str(&off).unwrap();
        assert!(UnroutedCorsLayer::new(&config).is_none());
    }
}
