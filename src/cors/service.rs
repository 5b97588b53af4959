use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{HeaderValue, Method, Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::policy::{CorsPolicy, vary_preflight};
use crate::body::ProxyBody;
use crate::error::{ErrorFormat, ProxyError};
use crate::request_id::RequestId;
use crate::rescue::render;

/// The service made by [`super::CorsLayer`].
#[derive(Debug, Clone)]
pub struct Cors<S> {
    pub(super) inner: S,
    pub(super) policy: Option<Arc<CorsPolicy>>,
}

impl<S, B> Service<Request<B>> for Cors<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Only preflights get past the security limits as OPTIONS.
        let preflight = request.method() == Method::OPTIONS;
        let Some(policy) = &self.policy else {
            if preflight {
                return ResponseFuture::ready(Err(ProxyError::MethodNotAllowed(Method::OPTIONS)));
            }
            return ResponseFuture::passthrough(self.inner.call(request));
        };
        let id = request.extensions().get::<RequestId>().cloned();
        if preflight {
            let answer = match policy.preflight(request.headers()) {
                Ok(response) => response,
                Err(rejection) => {
                    let rejected = ProxyError::CorsRejected(rejection);
                    let format = ErrorFormat::detect(&request);
                    let mut response = render(rejected, id.as_ref(), &format);
                    vary_preflight(response.headers_mut());
                    response
                }
            };
            return ResponseFuture::ready(Ok(answer));
        }
        let origin = policy.allow_origin(request.headers());
        let decoration = Decoration {
            policy: policy.clone(),
            origin,
            id,
            format: ErrorFormat::detect(&request),
        };
        ResponseFuture::decorated(self.inner.call(request), decoration)
    }
}

/// What an answer needs once the inner service has given it.
#[derive(Debug)]
pub(super) struct Decoration {
    pub(super) policy: Arc<CorsPolicy>,
    /// The `Access-Control-Allow-Origin` value; `None`: not a (allowed) CORS request.
    pub(super) origin: Option<HeaderValue>,
    /// To render an inner error with the request's id, in the format the
    /// client reads (a bucket with a fixed `errors` format renders its
    /// errors below, so none reach here).
    pub(super) id: Option<RequestId>,
    pub(super) format: ErrorFormat,
}

impl Decoration {
    /// `result` as an answer (an error rendered, so the page can read it)
    /// carrying the CORS fields.
    pub(super) fn apply(
        self,
        result: Result<Response<ProxyBody>, ProxyError>,
    ) -> Response<ProxyBody> {
        let mut response =
            result.unwrap_or_else(|error| render(error, self.id.as_ref(), &self.format));
        self.policy.decorate(response.headers_mut(), self.origin);
        response
    }
}

pin_project! {
    /// The response future of [`Cors`].
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<F> {
        Ready { answer: Option<Result<Response<ProxyBody>, ProxyError>> },
        Passthrough { #[pin] future: F },
        Decorated { #[pin] future: F, decoration: Option<Decoration> },
    }
}

impl<F> ResponseFuture<F> {
    fn ready(answer: Result<Response<ProxyBody>, ProxyError>) -> Self {
        let answer = Some(answer);
        Self {
            kind: Kind::Ready { answer },
        }
    }

    fn passthrough(future: F) -> Self {
        Self {
            kind: Kind::Passthrough { future },
        }
    }

    fn decorated(future: F, decoration: Decoration) -> Self {
        let decoration = Some(decoration);
        Self {
            kind: Kind::Decorated { future, decoration },
        }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ProxyBody>, ProxyError>>,
{
    type Output = Result<Response<ProxyBody>, ProxyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Ready { answer } => {
                Poll::Ready(answer.take().unwrap_or_else(|| {
                    Err(ProxyError::Internal("CORS answer polled twice".into()))
                }))
            }
            KindProj::Passthrough { future } => future.poll(cx),
            KindProj::Decorated { future, decoration } => {
                let result = ready!(future.poll(cx));
                match decoration.take() {
                    Some(decoration) => Poll::Ready(Ok(decoration.apply(result))),
                    None => Poll::Ready(result),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use http::{Method, Request, Response};
    use tower::ServiceExt;

    use super::Cors;
    use crate::body::{ProxyBody, full};
    use crate::cors::config::CorsConfig;
    use crate::cors::origin::{AllowedOrigins, parse_origin};
    use crate::cors::policy::CorsPolicy;
    use crate::error::ProxyError;

    /// A bucket stack that answers 200 for `/ok` and 401 otherwise,
    /// counting its calls.
    fn stack(
        rules: bool,
    ) -> (
        impl tower::Service<Request<()>, Response = Response<ProxyBody>, Error = ProxyError> + Clone,
        Arc<AtomicUsize>,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let inner = tower::service_fn(move |request: Request<()>| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match request.uri().path() {
                    "/ok" => Ok(Response::new(full("bytes"))),
                    _ => Err(ProxyError::MissingToken),
                }
            }
        });
        let config = CorsConfig {
            allowed_origins: AllowedOrigins::new([parse_origin("https://a.example").unwrap()]),
            allowed_methods: vec![Method::GET],
            allowed_headers: Vec::new(),
            expose_headers: Vec::new(),
            allow_credentials: false,
            max_age: None,
        };
        let policy = rules.then(|| Arc::new(CorsPolicy::new(&config)));
        (Cors { inner, policy }, calls)
    }

    fn request(method: Method, path: &str, origin: Option<&str>) -> Request<()> {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(origin) = origin {
            request = request
                .header("origin", origin)
                .header("access-control-request-method", "GET");
        }
        request.body(()).unwrap()
    }

    #[tokio::test]
    async fn inner_errors_become_answers_with_the_fields() {
        let (service, _) = stack(true);
        let origin = Some("https://a.example");
        let answer = service
            .oneshot(request(Method::GET, "/private", origin))
            .await
            .unwrap();
        assert_eq!(answer.status(), 401);
        assert_eq!(
            answer.headers()["www-authenticate"],
            "Bearer realm=\"yatagarasu\""
        );
        assert_eq!(
            answer.headers()["access-control-allow-origin"],
            "https://a.example"
        );
        assert_eq!(answer.headers()["vary"], "Origin");
    }

    #[tokio::test]
    async fn an_sdk_client_reads_inner_errors_as_s3_xml_with_the_fields() {
        let (service, _) = stack(true);
        let mut sdk = request(Method::GET, "/private", Some("https://a.example"));
        sdk.headers_mut()
            .insert("x-amz-content-sha256", "UNSIGNED-PAYLOAD".parse().unwrap());
        let answer = service.oneshot(sdk).await.unwrap();
        assert_eq!(answer.status(), 401);
        assert_eq!(answer.headers()["content-type"], "application/xml");
        assert_eq!(
            answer.headers()["access-control-allow-origin"],
            "https://a.example"
        );
        let body = http_body_util::BodyExt::collect(answer.into_body())
            .await
            .unwrap()
            .to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    }

    #[tokio::test]
    async fn preflights_never_reach_the_inner_service() {
        let (service, calls) = stack(true);
        let ok = (service.clone())
            .oneshot(request(Method::OPTIONS, "/ok", Some("https://a.example")))
            .await
            .unwrap();
        assert_eq!(ok.status(), 204);
        let refused = service
            .oneshot(request(Method::OPTIONS, "/ok", Some("https://b.example")))
            .await
            .unwrap();
        assert_eq!(refused.status(), 403);
        assert!(
            refused
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn without_rules_options_is_405_and_the_rest_untouched() {
        let (service, calls) = stack(false);
        let origin = Some("https://a.example");
        let refused = (service.clone())
            .oneshot(request(Method::OPTIONS, "/ok", origin))
            .await
            .unwrap_err();
        assert_eq!(refused.status(), 405);
        let ok = service
            .oneshot(request(Method::GET, "/ok", origin))
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert!(ok.headers().is_empty(), "{:?}", ok.headers());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
