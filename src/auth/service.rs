use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::TryFutureExt;
use futures_util::future::{BoxFuture, Either, MapOk, Ready, ready};
use http::{Request, Response};
use tower::{Service, ServiceExt};

use super::VerifiedClaims;
use super::layer::BucketAuth;
use super::metrics::Outcome;
use super::private_answer::privatize;
use super::token_source::{find_token, without_query_params};
use super::verifier::{Verified, VerifyError};
use crate::access_log::SharedLogContext;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::telemetry::otel::phase::{Phase, PhaseTimer};
use crate::telemetry::otel::{SPAN_TARGET, bucket_of};

/// The message of a 403 for claims that do not satisfy the rules.
const CLAIMS_DENIED: &str = "the token's claims do not allow this request";

/// The service made by [`super::AuthLayer`].
#[derive(Debug, Clone)]
pub struct Auth<S> {
    pub(super) inner: S,
    pub(super) bucket: Arc<BucketAuth>,
}

type Answer = Result<Response<ProxyBody>, ProxyError>;

/// Marks an authenticated answer `Cache-Control: private` (see
/// [`super::private_answer`]).
type Privatize = fn(Response<ProxyBody>) -> Response<ProxyBody>;

/// The future of [`Auth`]: an immediate refusal, the inner future marked
/// private (authenticated), or (rarely: unknown `kid` with JWKS) a key
/// refresh followed by the inner call.
pub type AuthFuture<F> =
    Either<Ready<Answer>, Either<MapOk<F, Privatize>, BoxFuture<'static, Answer>>>;

/// Records the outcome and turns a verified token into the request extension.
fn accept<B>(
    bucket: &BucketAuth,
    request: &mut Request<B>,
    verified: Verified,
) -> Result<(), ProxyError> {
    if !verified.rules_hold {
        bucket.counters.record(Outcome::Denied);
        return Err(ProxyError::Forbidden(CLAIMS_DENIED));
    }
    bucket.counters.record(Outcome::Success);
    let subject = verified
        .claims
        .get("sub")
        .and_then(|s| s.as_str())
        .map(str::to_owned);
    if let Some(context) = request.extensions().get::<SharedLogContext>() {
        context.set_identity(subject.as_deref(), verified.key_id.as_deref());
        context.set_claims(&verified.claims);
    }
    request.extensions_mut().insert(VerifiedClaims {
        subject,
        key_id: verified.key_id,
        claims: verified.claims,
        payload: verified.payload,
    });
    Ok(())
}

fn refuse(bucket: &BucketAuth, problem: crate::error::TokenProblem) -> ProxyError {
    bucket.counters.record(Outcome::of(problem));
    ProxyError::InvalidToken(problem)
}

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = AuthFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let bucket = &self.bucket;
        // A child span of the request and the slow log's `auth_ms` (when on);
        // ended before the inner call, so later phases are not inside it.
        let phase = PhaseTimer::start(
            Phase::Auth,
            &request,
            || tracing::info_span!(target: SPAN_TARGET, "auth", bucket = bucket_of(&request)),
        );
        let token = find_token(&bucket.sources, request.headers(), request.uri());
        // Query tokens leave the request before any later layer sees it.
        if let Some(uri) = without_query_params(request.uri(), &bucket.query_names) {
            *request.uri_mut() = uri;
        }
        let Some(token) = token else {
            bucket.counters.record(Outcome::Missing);
            return Either::Left(ready(Err(ProxyError::MissingToken)));
        };
        let verification = phase.in_scope(|| bucket.verifier.verify(&token));
        bucket
            .counters
            .record_token_cache(matches!(&verification, Ok(v) if v.cached));
        match verification {
            Ok(verified) => match accept(bucket, &mut request, verified) {
                Ok(()) => {
                    drop(phase);
                    let answer = self.inner.call(request).map_ok(privatize as Privatize);
                    Either::Right(Either::Left(answer))
                }
                Err(e) => Either::Left(ready(Err(e))),
            },
            Err(VerifyError::Invalid(problem)) => Either::Left(ready(Err(refuse(bucket, problem)))),
            Err(VerifyError::RefreshKeys(cache, _)) => {
                // The ready clone stays here; the future owns the one that was polled.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let bucket = bucket.clone();
                Either::Right(Either::Right(Box::pin(async move {
                    cache.refresh_if_allowed().await;
                    let verified = match bucket.verifier.verify(&token) {
                        Ok(verified) => verified,
                        Err(
                            VerifyError::Invalid(problem) | VerifyError::RefreshKeys(_, problem),
                        ) => {
                            return Err(refuse(&bucket, problem));
                        }
                    };
                    drop(token);
                    accept(&bucket, &mut request, verified)?;
                    inner.oneshot(request).await.map(privatize)
                })))
            }
        }
    }
}
