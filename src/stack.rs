//! The only place that lists the layer order.
//!
//! Outermost first. Request id and access log wrap the reload seam (see
//! [`crate::Proxy`]) so even a rejected request is logged with its id; the
//! layers below are built per configuration generation.
//!
//! After routing: (rate limit by client) → authentication (needs the route) →
//! authorization → (rate limit by user) → cache (after auth, so only
//! authorized requests reach cached bytes) → (circuit breaker). The
//! parenthesised concerns slot in at the marked points without touching the
//! others.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use tower::ServiceBuilder;
use tower::util::BoxCloneSyncService;

use crate::auth::AuthLayer;
use crate::authz::AuthzLayer;
use crate::body::ProxyBody;
use crate::cache::CacheLayer;
use crate::config::Config;
use crate::error::ProxyError;
use crate::health::HealthLayer;
use crate::limits::SecurityLimitsLayer;
use crate::rescue::RescueLayer;
use crate::route::{BucketRoute, RouteLayer, RouteTable};
use crate::s3_request::S3RequestLayer;
use crate::shared::{ClientUse, Shared};
use crate::sigv4::SigV4Layer;
use crate::upstream::{S3Backend, Upstream};

/// The per-generation service: boxed once, at the reload seam.
pub type StackService = BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, Infallible>;

/// A replacement for the pooled S3 client at the bottom of the stack.
///
/// It receives the signed request with an absolute S3 URI and the route
/// extensions; used by benchmarks and tests to measure or observe the stack
/// without a network, and by embedders with a custom transport.
pub type LeafService = BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, ProxyError>;

/// Why a validated configuration could not be turned into a stack.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct BuildError {
    /// The configuration path of the problem (e.g. `buckets[1].s3.ca_cert_path`).
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// The parts of one generation: the service and the routes it serves.
pub(crate) struct Built {
    pub(crate) service: StackService,
    pub(crate) routes: Arc<[Arc<BucketRoute>]>,
    pub(crate) clients: ClientUse,
}

/// Builds the bucket routes (backends and pooled clients) of a configuration.
fn build_routes(
    config: &Config,
    shared: &Shared,
    clients: &mut ClientUse,
) -> Result<Vec<Arc<BucketRoute>>, BuildError> {
    config
        .buckets
        .iter()
        .enumerate()
        .map(|(i, bucket)| {
            let client = shared
                .client(&config.upstream, bucket.s3.ca_cert_path.as_deref(), clients)
                .map_err(|e| BuildError {
                    path: format!("buckets[{i}].s3.ca_cert_path"),
                    message: e.to_string(),
                })?;
            let backend = S3Backend::new(&bucket.s3, client).map_err(|message| BuildError {
                path: format!("buckets[{i}].s3"),
                message,
            })?;
            Ok(Arc::new(BucketRoute::new(
                &bucket.name,
                bucket.path_prefix.clone(),
                Arc::new(backend),
            )))
        })
        .collect()
}

/// Builds the layer stack for one configuration generation.
pub(crate) fn build(config: &Config, shared: &Shared) -> Result<Built, BuildError> {
    let mut clients = ClientUse::default();
    let routes: Arc<[Arc<BucketRoute>]> = build_routes(config, shared, &mut clients)?.into();
    let names: Arc<[Arc<str>]> = routes.iter().map(|r| r.name.clone()).collect();
    let table = Arc::new(RouteTable::new(routes.iter().cloned()));

    let auth = AuthLayer::build(config, shared, &mut clients)?;
    let authz = AuthzLayer::build(config, shared)?;
    let cache = CacheLayer::build(config, shared)?;
    let leaf = match &shared.leaf {
        Some(leaf) => leaf.clone(),
        // Pooled keep-alive client with the request timeout.
        None => LeafService::new(Upstream::new(config.server.request_timeout)),
    };
    let service = ServiceBuilder::new()
        // Errors and panics of every layer below become typed JSON answers here.
        .layer(RescueLayer)
        // Probes answer before anything that could reject them.
        .layer(HealthLayer::new(
            shared.readiness.clone(),
            names,
            shared.started,
        ))
        // Cheap, stateless rejections: 405 for methods, 400 for unsafe paths.
        .layer(SecurityLimitsLayer)
        // Longest-prefix bucket lookup; inserts the route and object key.
        .layer(RouteLayer::new(table))
        // (rate limit by client slots in here)
        // Private buckets: verify the token; claims become an extension.
        .layer(auth)
        // Policy engines decide with the claims as input.
        .layer(authz)
        // (rate limit by user slots in here)
        // Only authorized requests reach cached bytes.
        .layer(cache)
        // (circuit breaker slots in here)
        // Only allowlisted headers and query parameters go to S3.
        .layer(S3RequestLayer)
        // The last step that touches the request: nothing may change it after signing.
        .layer(SigV4Layer)
        .service(leaf);

    Ok(Built {
        service: BoxCloneSyncService::new(service),
        routes,
        clients,
    })
}
