use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use metrics::SharedString;
use tower::{Service, ServiceExt};

use super::is_retriable;
use crate::body::ProxyBody;
use crate::error::ProxyError;
use crate::s3_request::replayable_copy;
use crate::telemetry::metrics::REPLICA_FAILOVERS_TOTAL;

/// One replica: its name (metric label) and its own stack.
#[derive(Debug, Clone)]
pub struct Target<S> {
    /// The replica's configured name.
    pub name: Arc<str>,
    /// The replica's stack (S3 request, signing with its identity, its upstream).
    pub service: S,
}

/// Sends each request to the replicas in priority order, moving on only
/// when a replica fails (see [`is_retriable`]).
#[derive(Debug)]
pub struct Failover<S> {
    bucket: Arc<str>,
    targets: Arc<[Target<S>]>,
}

impl<S> Clone for Failover<S> {
    fn clone(&self) -> Self {
        Self {
            bucket: self.bucket.clone(),
            targets: self.targets.clone(),
        }
    }
}

impl<S> Failover<S> {
    /// Fails over between `targets` (in priority order) of `bucket`;
    /// `None` when there is no target.
    pub fn new(bucket: Arc<str>, targets: Vec<Target<S>>) -> Option<Self> {
        (!targets.is_empty()).then(|| Self {
            bucket,
            targets: targets.into(),
        })
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

impl<S> Service<Request<ProxyBody>> for Failover<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = BoxFuture;

    /// Always ready: each attempt drives its replica's stack with `oneshot`.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ProxyBody>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { this.send(request).await })
    }
}

impl<S> Failover<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    async fn send(self, request: Request<ProxyBody>) -> Result<Response<ProxyBody>, ProxyError> {
        let Some((last, earlier)) = self.targets.split_last() else {
            return Err(ProxyError::Internal("a bucket without replicas".into()));
        };
        for (i, target) in earlier.iter().enumerate() {
            // Only bodiless reads can be sent twice.
            let Some(copy) = replayable_copy(&request) else {
                return forward(target, request).await;
            };
            match forward(target, copy).await {
                Err(error) if is_retriable(&error) => {
                    let next = self.targets.get(i + 1).unwrap_or(last);
                    self.count(target, next, &error);
                }
                outcome => return outcome,
            }
        }
        forward(last, request).await
    }

    fn count(&self, from: &Target<S>, to: &Target<S>, error: &ProxyError) {
        tracing::warn!(
            bucket = %self.bucket,
            from = %from.name,
            to = %to.name,
            %error,
            "replica failed; trying the next one"
        );
        metrics::counter!(
            REPLICA_FAILOVERS_TOTAL,
            "bucket" => SharedString::from(self.bucket.clone()),
            "from" => SharedString::from(from.name.clone()),
            "to" => SharedString::from(to.name.clone()),
        )
        .increment(1);
    }
}

/// Sends `request` to one replica. A named, boxed future: keeps the async
/// function above free of the replica stack's future type.
fn forward<S>(target: &Target<S>, request: Request<ProxyBody>) -> BoxFuture
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    Box::pin(target.service.clone().oneshot(request))
}

#[cfg(test)]
mod tests;
