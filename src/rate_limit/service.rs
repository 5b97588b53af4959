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

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tower::{ServiceBuilder, ServiceExt};

    use super::super::{ClientRateLimitLayer, KeyedLimit, Rate};
    use super::*;
    use crate::body::full;

    fn rate(burst: u32) -> Rate {
        Rate {
            requests_per_second: NonZeroU32::MIN,
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    fn request(ip: Option<&str>) -> Request<()> {
        let mut request = Request::get("/b/k").body(()).unwrap();
        if let Some(ip) = ip {
            request
                .extensions_mut()
                .insert(ClientIp(ip.parse().unwrap()));
        }
        request
    }

    #[tokio::test]
    async fn a_refused_request_never_reaches_the_inner_service() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let per_ip = Arc::new(KeyedLimit::new(rate(1), 10));
        let layer = ClientRateLimitLayer::new("b", None, Some(per_ip), None);
        let service = ServiceBuilder::new()
            .layer(layer)
            .service_fn(move |_: Request<()>| {
                counted.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, ProxyError>(Response::new(full("ok"))) }
            });
        let mut refused = None;
        for _ in 0..1000 {
            if let Err(e) = service.clone().oneshot(request(Some("10.0.0.1"))).await {
                refused = Some(e);
                break;
            }
        }
        let Some(ProxyError::RateLimited(throttled)) = refused else {
            panic!("never refused: {refused:?}");
        };
        assert_eq!((throttled.scope, throttled.limit), ("ip", 1));
        let passed = calls.load(Ordering::SeqCst);
        // Another address, and a request with no address, are not limited by it.
        assert!(
            service
                .clone()
                .oneshot(request(Some("10.0.0.2")))
                .await
                .is_ok()
        );
        assert!(service.clone().oneshot(request(None)).await.is_ok());
        assert_eq!(calls.load(Ordering::SeqCst), passed + 2);
    }
}
