use std::convert::Infallible;
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::service_fn;

use super::internal::serve_internal;
use crate::body::{ProxyBody, full};
use crate::config::ServerConfig;
use crate::telemetry::process::ProcessSampler;

fn answer(
    handle: &PrometheusHandle,
    sampler: &ProcessSampler,
    request: &Request<Incoming>,
) -> Response<ProxyBody> {
    if request.method() != Method::GET || request.uri().path() != "/metrics" {
        let mut response = Response::new(full("not found\n"));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return response;
    }
    sampler.sample();
    let mut response = Response::new(full(handle.render()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Serves `GET /metrics` until shutdown (sampling the process and runtime
/// gauges before each render), and runs the exporter's upkeep.
pub(super) async fn serve(
    listener: TcpListener,
    handle: PrometheusHandle,
    config: ServerConfig,
    shutdown: watch::Receiver<bool>,
) {
    let upkeep = {
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        })
    };
    let sampler = ProcessSampler::default();
    let service = service_fn(move |request: Request<Incoming>| {
        std::future::ready(Ok::<_, Infallible>(answer(&handle, &sampler, &request)))
    });
    serve_internal(listener, "metrics", &config, shutdown, service).await;
    upkeep.abort();
}
