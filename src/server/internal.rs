use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Layer, Service};

use super::accept::{Limits, accept_loop};
use super::connection::{self, Drain, Timeouts};
use super::descriptors::Share;
use super::listener::connection_builder;
use crate::body::ProxyBody;
use crate::config::ServerConfig;
use crate::request_id::RequestIdLayer;

/// Connections open at once on each internal listener: a few scrapers and
/// operators, so a flood of idle connections cannot take the process's
/// descriptors.
pub(super) const INTERNAL_MAX_CONNECTIONS: usize = 32;

/// Accept loop of the small internal listeners (admin API, metrics): the same
/// header limits, first-request and idle deadlines as the main listener, a
/// cap of [`INTERNAL_MAX_CONNECTIONS`], request ids on every answer, and no
/// drain (at shutdown their connections are told to close, not waited for).
///
/// `service` answers every request; it sees the [`crate::request_id::RequestId`]
/// in the request's extensions.
pub(super) async fn serve_internal<S>(
    listener: TcpListener,
    name: &'static str,
    config: &ServerConfig,
    shutdown: watch::Receiver<bool>,
    service: S,
) where
    S: Service<Request<Incoming>, Response = Response<ProxyBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = Arc::new(connection_builder(config));
    let timeouts = Timeouts::of(config);
    let drain = Drain::new();
    let limits = Limits {
        shared: None,
        listener: name,
        max_connections: INTERNAL_MAX_CONNECTIONS,
        share: Share::Operators,
    };
    accept_loop(listener, limits, shutdown, |stream, _peer, permit| {
        let service = TowerToHyperService::new(RequestIdLayer.layer(service.clone()));
        let builder = builder.clone();
        let stop = drain.watcher();
        tokio::spawn(async move {
            let _ = connection::serve(&builder, stream, service, timeouts, stop).await;
            drop(permit);
        });
    })
    .await;
}
