use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::{Either, Ready, ready};
use http::{Request, Response};
use tower::Service;

use super::layer::Rules;
use crate::body::ProxyBody;
use crate::client_addr::client_ip;
use crate::error::ProxyError;

/// The service made by [`super::IpFilterLayer`].
#[derive(Debug, Clone)]
pub struct IpFilter<S> {
    pub(super) inner: S,
    pub(super) rules: Arc<Rules>,
}

impl<S, B> Service<Request<B>> for IpFilter<S>
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
        let client = client_ip(request.extensions());
        if self.rules.filter.allows(client) {
            return Either::Right(self.inner.call(request));
        }
        self.rules.denied.increment(1);
        tracing::info!(
            bucket = &*self.rules.bucket,
            client = client.map(tracing::field::display),
            "client address refused by the bucket's IP filter"
        );
        Either::Left(ready(Err(ProxyError::Forbidden(
            "the client address may not use this bucket",
        ))))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tower::{ServiceBuilder, ServiceExt};

    use super::super::{IpFilterConfig, IpFilterLayer, IpSet, parse_entry};
    use super::*;
    use crate::access_log::ClientAddr;
    use crate::body::empty;
    use crate::client_addr::ClientIp;

    fn set(entries: &[&str]) -> IpSet {
        IpSet::new(entries.iter().map(|e| parse_entry(e).unwrap()))
    }

    /// Sends one request with `extensions` applied; returns the status (or
    /// the error) and how many requests reached the inner service.
    async fn send(
        filter: IpFilterConfig,
        extend: impl FnOnce(&mut http::Extensions),
    ) -> (Result<u16, ProxyError>, usize) {
        let reached = Arc::new(AtomicUsize::new(0));
        let counter = reached.clone();
        let service = ServiceBuilder::new()
            .layer(IpFilterLayer::new("b", filter))
            .service_fn(move |_request: Request<()>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, ProxyError>(Response::new(empty())) }
            });
        let mut request = Request::new(());
        extend(request.extensions_mut());
        let result = service.oneshot(request).await.map(|r| r.status().as_u16());
        (result, reached.load(Ordering::SeqCst))
    }

    fn client(ip: &str) -> impl FnOnce(&mut http::Extensions) {
        let ip: IpAddr = ip.parse().unwrap();
        move |e| {
            e.insert(ClientIp(ip));
        }
    }

    #[tokio::test]
    async fn allowlisted_clients_pass_and_others_are_refused_before_the_inner_service() {
        let filter = IpFilterConfig {
            allowlist: set(&["10.0.0.0/8", "2001:db8::/32"]),
            blocklist: set(&["10.6.6.0/24"]),
        };
        assert_eq!(
            send(filter.clone(), client("10.1.1.1")).await.0.unwrap(),
            200
        );
        assert_eq!(
            send(filter.clone(), client("2001:db8::1")).await.0.unwrap(),
            200
        );
        for refused in ["10.6.6.6", "192.0.2.1", "2001:db9::1"] {
            let (result, reached) = send(filter.clone(), client(refused)).await;
            assert!(matches!(result, Err(ProxyError::Forbidden(_))), "{refused}");
            assert_eq!(reached, 0, "{refused} reached the inner service");
        }
    }

    #[tokio::test]
    async fn the_resolved_address_wins_over_the_peer_and_the_peer_is_the_fallback() {
        let filter = IpFilterConfig {
            allowlist: IpSet::default(),
            blocklist: set(&["192.0.2.9"]),
        };
        let peer = ClientAddr(SocketAddr::from(([192, 0, 2, 9], 5000)));
        let (result, _) = send(filter.clone(), |e| {
            e.insert(peer);
            e.insert(ClientIp("198.51.100.1".parse().unwrap()));
        })
        .await;
        assert_eq!(result.unwrap(), 200);
        let (result, _) = send(filter, |e| {
            e.insert(peer);
        })
        .await;
        assert!(matches!(result, Err(ProxyError::Forbidden(_))));
    }
}
