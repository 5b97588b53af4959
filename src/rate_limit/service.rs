use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{Request, Response};
use metrics::Counter;
use tower::Service;

use super::limiter::{KeyedLimit, SharedLimit, UserLimit, address_key};
use crate::access_log::ClientAddr;
use crate::auth::VerifiedClaims;
use crate::body::ProxyBody;
use crate::client_addr::ClientIp;
use crate::error::{ProxyError, Throttled};

/// The future of both services: an immediate refusal, or the inner call.
pub type RateLimitFuture<F> = Either<Ready<Result<Response<ProxyBody>, ProxyError>>, F>;

/// The client's address: the resolved [`ClientIp`], else the TCP peer
/// (embedded use without the listener), else none (the keyed limit is skipped).
fn client_ip<B>(request: &Request<B>) -> Option<IpAddr> {
    let extensions = request.extensions();
    (extensions.get::<ClientIp>().map(|c| c.0))
        .or_else(|| extensions.get::<ClientAddr>().map(|a| a.0.ip()))
}

/// The client limits of one bucket, in the order they are checked.
#[derive(Debug)]
pub(crate) struct ClientLimits {
    pub(super) global: Option<Arc<SharedLimit>>,
    pub(super) per_ip: Option<Arc<KeyedLimit<IpAddr>>>,
    pub(super) bucket: Option<Arc<SharedLimit>>,
    pub(super) refused_global: Counter,
    pub(super) refused_ip: Counter,
    pub(super) refused_bucket: Counter,
}

impl ClientLimits {
    /// Global, then per address, then per bucket: the first refusal wins
    /// (a request an earlier limit admitted has used its budget there).
    fn check(&self, addr: Option<IpAddr>) -> Result<(), Throttled> {
        if let Some(global) = &self.global {
            global
                .check("global")
                .inspect_err(|_| self.refused_global.increment(1))?;
        }
        if let (Some(per_ip), Some(addr)) = (&self.per_ip, addr) {
            per_ip
                .check(&address_key(addr), "ip")
                .inspect_err(|_| self.refused_ip.increment(1))?;
        }
        if let Some(bucket) = &self.bucket {
            bucket
                .check("bucket")
                .inspect_err(|_| self.refused_bucket.increment(1))?;
        }
        Ok(())
    }
}

/// The service made by [`super::ClientRateLimitLayer`].
#[derive(Debug, Clone)]
pub struct ClientRateLimit<S> {
    pub(super) inner: S,
    pub(super) limits: Arc<ClientLimits>,
}

impl<S, B> Service<Request<B>> for ClientRateLimit<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = RateLimitFuture<S::Future>;

    /// The limit itself never waits: a request over it is refused in `call`.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match self.limits.check(client_ip(&request)) {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(throttled) => Either::Left(ready(Err(ProxyError::RateLimited(throttled)))),
        }
    }
}

/// The service made by [`super::UserRateLimitLayer`].
#[derive(Debug, Clone)]
pub struct UserRateLimit<S> {
    pub(super) inner: S,
    pub(super) limit: Arc<UserLimit>,
    pub(super) refused: Counter,
}

impl<S, B> Service<Request<B>> for UserRateLimit<S>
where
    S: Service<Request<B>, Response = Response<ProxyBody>, Error = ProxyError>,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future = RateLimitFuture<S::Future>;

    /// The limit itself never waits: a request over it is refused in `call`.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let claims = request.extensions().get::<VerifiedClaims>();
        let decision = match self.limit.key(claims, client_ip(&request)) {
            Some(key) => self.limit.check(&key),
            None => Ok(()),
        };
        match decision {
            Ok(()) => Either::Right(self.inner.call(request)),
            Err(throttled) => {
                self.refused.increment(1);
                Either::Left(ready(Err(ProxyError::RateLimited(throttled))))
            }
        }
    }
}
