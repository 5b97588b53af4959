//! The admin API listener: `/admin/reload`, `/admin/status` and the cache
//! endpoints.
//!
//! A request passes, in order:
//! - `gate`: the browser and DNS-rebinding guard
//!   ([`crate::auth::admin_guard`]) and the admin token or JWT, as a tower
//!   layer in front of every path, known or not;
//! - `routes`: the path and method, looked up in a `matchit` table;
//! - `endpoints`: each endpoint's answer, rendered by `json`.

mod endpoints;
mod gate;
mod json;
mod routes;

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Service, ServiceBuilder};

use super::Control;
use super::internal::serve_internal;
use crate::body::ProxyBody;
use crate::config::ServerConfig;
use gate::AdminGateLayer;
use routes::Routes;

/// Serves the admin API until shutdown.
pub(super) async fn serve(
    listener: TcpListener,
    control: Arc<Control>,
    config: ServerConfig,
    shutdown: watch::Receiver<bool>,
) {
    // The Host guard accepts the bound IP as a name of this listener.
    let bound = listener
        .local_addr()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let routes = match Routes::new() {
        Ok(routes) => Arc::new(routes),
        Err(error) => {
            tracing::error!(%error, "cannot build the admin routes; admin API not served");
            return;
        }
    };
    let service = ServiceBuilder::new()
        // Outside the routes, so no endpoint, nor a 404, is reached unguarded.
        .layer(AdminGateLayer::new(control.clone(), bound))
        .service(AdminApi { control, routes });
    serve_internal(listener, "admin", &config, shutdown, service).await;
}

/// The admin endpoints behind the gate: routes a request and answers it.
#[derive(Debug, Clone)]
struct AdminApi {
    control: Arc<Control>,
    routes: Arc<Routes>,
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

impl<B> Service<Request<B>> for AdminApi {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = BoxFuture;

    /// Always ready: the work happens in the returned future.
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Resolved here, so the future owns what it needs and not the request.
        let id = json::request_id(&request);
        let route = self.routes.resolve(request.method(), request.uri().path());
        let control = self.control.clone();
        Box::pin(async move { Ok(endpoints::answer(&control, route, &id).await) })
    }
}
