use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use metrics::SharedString;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::s3_request::replayable_copy;
use crate::telemetry::metrics::FALLBACK_404_TOTAL;

/// The service made by [`super::FallbackLayer`].
#[derive(Debug, Clone)]
pub struct Fallback<S> {
    pub(super) primary: S,
    pub(super) fallback: TargetService,
    pub(super) bucket: Arc<str>,
}

/// The fallback bucket's stack, boxed once at build: it is called only
/// after a 404, so its box costs nothing on the way to the primary.
pub type TargetService = BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, ProxyError>;

/// Whether the targets said the key does not exist: a 404 `NoSuchKey`, or a
/// 404 without a code (HEAD answers carry no error document).
pub fn is_no_such_key(error: &ProxyError) -> bool {
    matches!(error, ProxyError::S3 { status, code, .. }
        if *status == StatusCode::NOT_FOUND && (code == "NoSuchKey" || code.is_empty()))
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

type Outcome = Result<Response<ProxyBody>, ProxyError>;

impl<S> Service<Request<ProxyBody>> for Fallback<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.primary.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ProxyBody>) -> Self::Future {
        // The primary polled ready is the one called; the fallback is driven
        // with `oneshot` only when needed.
        let ready = self.primary.clone();
        let mut primary = std::mem::replace(&mut self.primary, ready);
        let Some(copy) = replayable_copy(&request) else {
            return Box::pin(primary.call(request));
        };
        // Boxed here, named: the async block below holds no inner future type.
        let first: BoxFuture = Box::pin(primary.call(request));
        let fallback = self.fallback.clone();
        let bucket = self.bucket.clone();
        Box::pin(async move {
            match first.await {
                Err(error) if is_no_such_key(&error) => {
                    let outcome = lookup(fallback, copy).await;
                    count(bucket, &outcome);
                    outcome
                }
                outcome => outcome,
            }
        })
    }
}

/// Sends the copied request to the fallback bucket (a named, boxed future:
/// keeps the async block above free of the service's future type).
fn lookup(fallback: TargetService, copy: Request<ProxyBody>) -> BoxFuture {
    Box::pin(fallback.oneshot(copy))
}

/// Counts one lookup in the fallback bucket by its result.
fn count(bucket: Arc<str>, outcome: &Outcome) {
    let result = match outcome {
        Ok(_) => "hit",
        Err(error) if is_no_such_key(error) => "miss",
        Err(error) => {
            tracing::warn!(bucket = %bucket, %error, "the 404 fallback bucket failed");
            "error"
        }
    };
    metrics::counter!(
        FALLBACK_404_TOTAL,
        "bucket" => SharedString::from(bucket),
        "result" => result,
    )
    .increment(1);
}

#[cfg(test)]
mod tests;
