use std::task::{Context, Poll};

use http::Request;
use tower::Service;

use super::{ClientIp, resolve};
use crate::access_log::{ClientAddr, SharedLogContext};
use crate::ip_filter::IpSet;

/// The service made by [`super::ClientAddrLayer`].
#[derive(Debug, Clone)]
pub struct ResolveClient<S> {
    pub(super) inner: S,
    pub(super) trusted: IpSet,
}

impl<S, B> Service<Request<B>> for ResolveClient<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let extensions = request.extensions();
        // The TCP peer; the listener's `ClientIp` when only that is known.
        let peer = extensions
            .get::<ClientAddr>()
            .map(|a| a.0.ip())
            .or_else(|| extensions.get::<ClientIp>().map(|c| c.0));
        if let Some(peer) = peer {
            let client = resolve(peer, request.headers(), &self.trusted);
            if let Some(context) = extensions.get::<SharedLogContext>() {
                context.set_client(client);
            }
            request.extensions_mut().insert(ClientIp(client));
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};
    use std::sync::Arc;

    use http::Response;
    use tower::{ServiceBuilder, ServiceExt};

    use super::super::ClientAddrLayer;
    use super::*;
    use crate::access_log::LogContext;
    use crate::ip_filter::parse_entry;

    /// Sends a request from `peer` with `xff`; returns the `ClientIp` the
    /// inner service saw and what the log context was told.
    async fn seen(peer: &str, xff: &str) -> (Option<IpAddr>, Option<IpAddr>) {
        let trusted = IpSet::new([parse_entry("127.0.0.1").unwrap()]);
        let service = ServiceBuilder::new()
            .option_layer(ClientAddrLayer::new(&trusted))
            .service_fn(|request: Request<()>| async move {
                let ip = request.extensions().get::<ClientIp>().map(|c| c.0);
                Ok::<_, std::convert::Infallible>(Response::new(ip))
            });
        let context = Arc::new(LogContext::default());
        let mut request = Request::builder()
            .header("x-forwarded-for", xff)
            .body(())
            .unwrap();
        let peer: IpAddr = peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(ClientAddr(SocketAddr::new(peer, 4000)));
        request.extensions_mut().insert(ClientIp(peer));
        request.extensions_mut().insert(context.clone());
        let Ok(response) = service.oneshot(request).await;
        (response.into_body(), context.client())
    }

    #[tokio::test]
    async fn a_trusted_peer_forwards_the_client_and_the_log_is_told() {
        let ip = "203.0.113.9".parse().ok();
        assert_eq!(seen("127.0.0.1", "203.0.113.9").await, (ip, ip));
    }

    #[tokio::test]
    async fn an_untrusted_peer_stays_the_client() {
        let ip = "127.0.0.2".parse().ok();
        assert_eq!(seen("127.0.0.2", "203.0.113.9").await, (ip, ip));
    }

    #[test]
    fn no_layer_when_nobody_is_trusted() {
        assert!(ClientAddrLayer::new(&IpSet::default()).is_none());
    }
}
