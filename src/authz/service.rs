use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower::Service;

use super::input::{InputDocument, PolicyHeaders};
use super::policy::{BucketPolicy, Lookup};
use crate::auth::VerifiedClaims;
use crate::body::ProxyBody;
use crate::client_addr::client_ip;
use crate::error::ProxyError;
use crate::limits::SafePath;
use crate::route::ObjectKey;
use crate::telemetry::otel::phase::{Phase, PhaseTimer};
use crate::telemetry::otel::{SPAN_TARGET, bucket_of};

/// A decision being made by an engine.
type Decision = Pin<Box<dyn Future<Output = Result<(), ProxyError>> + Send>>;

pin_project! {
    /// The future of [`AuthzService`]: the inner service's own future when
    /// the request needs no engine call (no policy, or a cached "allow"),
    /// otherwise the engine's decision followed by the inner call.
    pub struct ResponseFuture<S, F> {
        #[pin]
        state: State<S, F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, F> {
        // Waiting for the inner service.
        Inner { #[pin] future: F },
        // Waiting for the engine; the request goes on only if it allows.
        Deciding { decision: Decision, next: Option<(S, Request<ProxyBody>)> },
        // Refused without (another) engine call.
        Refused { error: Option<ProxyError> },
    }
}

impl<S, F> ResponseFuture<S, F> {
    fn inner(future: F) -> Self {
        Self {
            state: State::Inner { future },
        }
    }

    fn refused(error: ProxyError) -> Self {
        Self {
            state: State::Refused { error: Some(error) },
        }
    }
}

impl<S, F> std::fmt::Debug for ResponseFuture<S, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S> Future for ResponseFuture<S, S::Future>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Output = Result<Response<ProxyBody>, ProxyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Inner { future } => return future.poll(cx),
                StateProj::Refused { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(|| {
                        ProxyError::Internal("authorization polled after completion".into())
                    })));
                }
                StateProj::Deciding { decision, next } => {
                    let verdict = std::task::ready!(decision.as_mut().poll(cx));
                    let next = match (verdict, next.take()) {
                        (Ok(()), Some((mut inner, request))) => State::Inner {
                            future: inner.call(request),
                        },
                        (Err(e), _) => State::Refused { error: Some(e) },
                        (Ok(()), None) => State::Refused { error: None },
                    };
                    state.set(next);
                }
            }
        }
    }
}

/// The service made by [`super::AuthzLayer`].
#[derive(Debug, Clone)]
pub struct AuthzService<S> {
    pub(super) inner: S,
    pub(super) policy: Arc<BucketPolicy>,
}

impl<S> AuthzService<S> {
    /// What the bucket's decision cache knows about this request.
    fn lookup<B>(&self, request: &Request<B>) -> Result<Lookup, ProxyError> {
        let policy = &self.policy;
        let extensions = request.extensions();
        let key = extensions
            .get::<ObjectKey>()
            .ok_or_else(|| ProxyError::Internal("authorization needs the object key".into()))?;
        let path = extensions
            .get::<SafePath>()
            .map_or_else(|| request.uri().path(), |p| p.0.as_str());
        let claims = extensions.get::<VerifiedClaims>();
        let input = InputDocument {
            method: request.method().as_str(),
            path,
            bucket: policy.bucket(),
            key: &key.0,
            claims: claims.map(|c| &*c.claims),
            claims_payload: claims.and_then(|c| c.payload.as_deref()),
            client_ip: client_ip(extensions),
            headers: PolicyHeaders {
                headers: request.headers(),
                hidden: policy.token_headers(),
            },
        };
        Ok(policy.lookup(&input))
    }
}

impl<S> Service<Request<ProxyBody>> for AuthzService<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = ResponseFuture<S, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ProxyBody>) -> Self::Future {
        // A child span of the request and the slow log's `authz_ms` (when on).
        let phase = PhaseTimer::start(
            Phase::Authz,
            &request,
            || tracing::info_span!(target: SPAN_TARGET, "authz", bucket = bucket_of(&request)),
        );
        let (key, query) = match phase.in_scope(|| self.lookup(&request)) {
            Ok(Lookup::Cached(true)) => {
                drop(phase);
                return ResponseFuture::inner(self.inner.call(request));
            }
            Ok(Lookup::Cached(false)) => {
                return ResponseFuture::refused(BucketPolicy::denied());
            }
            Ok(Lookup::Ask { key, query }) => (key, query),
            Err(e) => return ResponseFuture::refused(e),
        };
        let policy = self.policy.clone();
        // The clone takes the place of the service that was polled ready.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            state: State::Deciding {
                decision: Box::pin(
                    phase
                        .wrap(async move { policy.decide(key.as_deref(), query.as_deref()).await }),
                ),
                next: Some((inner, request)),
            },
        }
    }
}
