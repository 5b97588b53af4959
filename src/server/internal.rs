use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Layer, service_fn};

use super::listener::connection_builder;
use crate::body::ProxyBody;
use crate::config::ServerConfig;
use crate::request_id::RequestIdLayer;

/// Accept loop of the small internal listeners (admin API, metrics): the same
/// header limits and slow-loris guard as the main listener, request ids on
/// every answer, and no drain (they stop with the process).
pub(super) async fn serve_internal<F, Fut>(
    listener: TcpListener,
    config: &ServerConfig,
    mut shutdown: watch::Receiver<bool>,
    answer: F,
) where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let builder = Arc::new(connection_builder(config));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let answer = answer.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = RequestIdLayer.layer(service_fn(move |request| {
                let response = answer(request);
                async move { Ok::<_, Infallible>(response.await) }
            }));
            let _ = builder
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
                .await;
        });
    }
}
