use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::Service;

use super::accept::{Limits, accept_loop};
use super::connection::{self, Drain, Timeouts};
use super::descriptors::Share;
use super::tls::TlsState;

use crate::Proxy;
use crate::access_log::ClientAddr;
use crate::body::ProxyBody;
use crate::client_addr::ClientIp;
use crate::config::ServerConfig;
use crate::reload::ProxyFuture;

/// The proxy bound to one client connection (adds the peer address).
#[derive(Clone)]
struct Connected {
    proxy: Proxy,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Connected {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = ProxyFuture;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        let extensions = request.extensions_mut();
        extensions.insert(ClientAddr(self.peer));
        // Canonical: a dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`.
        extensions.insert(ClientIp(self.peer.ip().to_canonical()));
        self.proxy.clone().call(request)
    }
}

/// The connection builder with the limits from the configuration.
pub(super) fn connection_builder(config: &ServerConfig) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        // A client that never finishes its headers is dropped (slow-loris).
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        // Above the configured limit, so the security limits layer answers
        // with its JSON 431; only far beyond it does the parser refuse.
        .max_headers(
            config
                .security_limits
                .max_headers
                .saturating_mul(2)
                .max(100),
        );
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        // With max_connections, this bounds the requests in flight.
        .max_concurrent_streams(config.http2_max_concurrent_streams)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// One data listener: its name in logs and metrics, and its TLS if any.
#[derive(Debug, Clone)]
pub(super) struct DataListener {
    /// `main`, or `plain` (`server.https.plain_address`).
    pub(super) name: &'static str,
    /// The TLS settings new connections get; `None`: plain HTTP.
    pub(super) tls: Option<Arc<TlsState>>,
    /// `server.max_connections`, shared by every data listener.
    pub(super) slots: Arc<Semaphore>,
}

/// Accepts connections until `shutdown` flips, then hands back the ones in flight.
pub(super) async fn serve(
    listener: TcpListener,
    kind: DataListener,
    proxy: Proxy,
    config: ServerConfig,
    shutdown: watch::Receiver<bool>,
) -> Drain {
    let builder = Arc::new(connection_builder(&config));
    let timeouts = Timeouts::of(&config);
    let drain = Drain::new();
    let limits = Limits {
        listener: kind.name,
        max_connections: config.max_connections,
        share: Share::Clients,
        shared: Some(kind.slots.clone()),
    };
    accept_loop(listener, limits, shutdown, |stream, peer, permit| {
        let _ = stream.set_nodelay(true);
        let service = Connected {
            proxy: proxy.clone(),
            peer,
        };
        let builder = builder.clone();
        let stop = drain.watcher();
        let tls = kind.tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => connection::serve(&builder, stream, service, timeouts, stop).await,
                // In the connection's task, so a slow handshake never holds
                // up the accept loop; bounded like the first request.
                Some(tls) => match tls.handshake(stream, timeouts.first_request).await {
                    Ok(stream) => {
                        connection::serve(&builder, stream, service, timeouts, stop).await
                    }
                    Err(error) => {
                        tracing::debug!(%error, %peer, "TLS handshake did not complete");
                        return drop(permit);
                    }
                },
            };
            if let Err(error) = served {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    })
    .await;
    drain
}
