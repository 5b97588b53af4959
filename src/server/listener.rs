use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::Service;

use crate::Proxy;
use crate::access_log::ClientAddr;
use crate::body::ProxyBody;
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
        request.extensions_mut().insert(ClientAddr(self.peer));
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
        .max_headers(100);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// In-flight connections after the listener stopped accepting.
pub(super) struct Drained(GracefulShutdown);

impl Drained {
    /// Waits for the connections to finish, at most `grace`.
    pub(super) async fn wait(self, grace: Duration) {
        if tokio::time::timeout(grace, self.0.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(
                ?grace,
                "graceful shutdown timed out; closing remaining connections"
            );
        }
    }
}

/// Accepts connections until `shutdown` flips, then hands back the ones in flight.
pub(super) async fn serve(
    listener: TcpListener,
    proxy: Proxy,
    config: ServerConfig,
    mut shutdown: watch::Receiver<bool>,
) -> Drained {
    let builder = Arc::new(connection_builder(&config));
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(config.max_connections));
    loop {
        // Take a connection slot first, so over the cap new clients wait in the backlog.
        let permit = tokio::select! {
            _ = shutdown.changed() => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // EMFILE and friends: back off briefly instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = Connected {
            proxy: proxy.clone(),
            peer,
        };
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    Drained(graceful)
}
