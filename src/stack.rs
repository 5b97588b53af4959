//! The only place that lists the layer order, in two parts.
//!
//! **Shared outer part**, outermost first. Request id and access log wrap the
//! reload seam (see [`crate::Proxy`]) so even a rejected request is logged
//! with its id. Below the seam, per configuration generation: rescue →
//! health → security limits → route. Route picks the bucket and calls its
//! stack.
//!
//! **Per bucket**, built once per generation with exactly the layers the
//! bucket configures: rate limit by client → authentication (private
//! buckets) → authorization (buckets with a policy) → rate limit by user →
//! cache (while caching is enabled; after auth, so only authorized requests
//! reach cached bytes) → (circuit breaker) → S3 request → SigV4 → upstream.
//! A layer a bucket does not configure is an `Either` arm that costs one
//! branch; the parenthesised concerns slot in at the marked points.

use std::convert::Infallible;
use std::sync::Arc;

use http::{Request, Response};
use tower::ServiceBuilder;
use tower::util::{BoxCloneSyncService, Either};

use crate::auth::{AuthLayer, JwksCache, KeySets};
use crate::authz::AuthzLayer;
use crate::backend::S3Backend;
use crate::body::ProxyBody;
use crate::build::{Staged, Staging};
use crate::cache::{CacheGeneration, CacheLayer};
use crate::config::{BucketConfig, Config};
use crate::health::HealthLayer;
use crate::limits::SecurityLimitsLayer;
use crate::rate_limit::RateLimits;
use crate::rescue::RescueLayer;
use crate::route::{BucketRoute, BucketService, Mounted, Route, RouteTable};
use crate::s3_request::S3RequestLayer;
use crate::shared::Shared;
use crate::sigv4::SigV4Layer;
use crate::upstream::Upstream;

pub use crate::build::BuildError;
pub use crate::upstream::LeafService;

/// The per-generation service: boxed once, at the reload seam.
pub type StackService = BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, Infallible>;

/// One generation, built but not yet live.
pub(crate) struct Built {
    pub(crate) service: StackService,
    pub(crate) routes: Arc<[Arc<BucketRoute>]>,
    /// Changes to long-lived state, applied once the generation is live.
    pub(crate) staged: Staged,
    /// The admin JWKS key set, kept alive (and refreshed) with the generation.
    pub(crate) admin_keys: Option<Arc<JwksCache>>,
}

/// What every bucket's stack is built from, besides its own section.
struct Parts<'a> {
    config: &'a Config,
    shared: &'a Shared,
    cache: Option<CacheGeneration>,
    rate_limits: RateLimits,
}

/// Builds the stack of one configuration generation, with no side effect
/// until [`Built::staged`] is committed.
pub(crate) fn build(config: &Config, shared: &Shared) -> Result<Built, BuildError> {
    let mut staging = Staging::new(shared);
    let mut keys = KeySets::new(&shared.auth, &config.upstream);
    let parts = Parts {
        config,
        shared,
        cache: CacheGeneration::stage(config, &shared.cache, &mut staging)?,
        rate_limits: RateLimits::stage(config, &shared.rate_limit, &mut staging),
    };
    let mut mounted = Vec::with_capacity(config.buckets.len());
    for (i, bucket) in config.buckets.iter().enumerate() {
        let at = format!("buckets[{i}]");
        mounted.push(bucket_stack(&parts, bucket, &mut keys, &mut staging, &at)?);
    }
    let admin_keys = match &config.admin.jwt {
        Some(admin) => keys
            .verifier(&admin.jwt, &mut staging, "admin.jwt")?
            .jwks()
            .cloned(),
        None => None,
    };
    keys.stage(&mut staging);
    let routes: Arc<[Arc<BucketRoute>]> = mounted.iter().map(|m| m.route.clone()).collect();
    Ok(Built {
        service: outer(config, shared, &routes, mounted),
        routes,
        staged: staging.finish(),
        admin_keys,
    })
}

/// The shared outer part, down to the route that dispatches to each bucket.
fn outer<S: BucketService>(
    config: &Config,
    shared: &Shared,
    routes: &[Arc<BucketRoute>],
    mounted: Vec<Mounted<S>>,
) -> StackService {
    let names: Arc<[Arc<str>]> = routes.iter().map(|r| r.name.clone()).collect();
    let table = RouteTable::new(
        mounted
            .into_iter()
            .map(|m| (m.route.path_prefix.clone(), m)),
    );
    let service = ServiceBuilder::new()
        // Errors and panics of every layer below become typed JSON answers here.
        .layer(RescueLayer)
        // Probes answer before anything that could reject them.
        .layer(HealthLayer::new(
            shared.readiness.clone(),
            names,
            shared.started,
        ))
        // Cheap, stateless rejections before any lookup: 405 for methods,
        // 414/431/413 beyond the size limits, 400 for unsafe paths.
        .layer(SecurityLimitsLayer::new(config.server.security_limits))
        // Longest-prefix bucket lookup; inserts the route and object key and
        // calls the bucket's own stack.
        .service(Route::new(Arc::new(table)));
    BoxCloneSyncService::new(service)
}

/// One bucket's stack: only the layers it configures, down to its S3 target.
fn bucket_stack(
    parts: &Parts<'_>,
    bucket: &BucketConfig,
    keys: &mut KeySets<'_>,
    staging: &mut Staging<'_>,
    at: &str,
) -> Result<Mounted<impl BucketService>, BuildError> {
    let route = Arc::new(bucket_route(parts.config, bucket, staging, at)?);
    let auth = AuthLayer::for_bucket(bucket, keys, staging, at)?;
    let authz = AuthzLayer::for_bucket(
        bucket,
        &parts.shared.authz,
        &mut || {
            staging
                .client(&parts.config.upstream, None)
                .map_err(|e| e.to_string())
        },
        at,
    )?;
    let cache = (parts.cache.as_ref()).map(|cache| CacheLayer::for_bucket(cache, bucket));
    let leaf = match &parts.shared.leaf {
        Some(leaf) => Either::Right(leaf.clone()),
        // The bucket's pooled keep-alive client, with the request timeout.
        None => Either::Left(Upstream::new(
            route.backend.clone(),
            route.metrics.clone(),
            parts.config.server.request_timeout,
        )),
    };
    let service = ServiceBuilder::new()
        // Cheap shedding before any token is verified: global, per client
        // address, per bucket (each only where configured).
        .option_layer(parts.rate_limits.client_layer(bucket))
        // Private buckets: verify the token; claims become an extension.
        .option_layer(auth)
        // Policy engines decide with the claims as input.
        .option_layer(authz)
        // Per user (the verified claim; anonymous: the address), once the
        // claims are known and before cached bytes are served.
        .option_layer(parts.rate_limits.user_layer(bucket))
        // Only authorized requests reach cached bytes.
        .option_layer(cache)
        // (circuit breaker slots in here)
        // Only allowlisted headers and query parameters go to S3.
        .layer(S3RequestLayer::new(route.backend.clone()))
        // The last step that touches the request: nothing may change it after signing.
        .layer(SigV4Layer::new(route.backend.clone()))
        .service(leaf);
    Ok(Mounted { route, service })
}

/// The bucket's route: its S3 target (endpoint, identity, pooled client) and metrics.
fn bucket_route(
    config: &Config,
    bucket: &BucketConfig,
    staging: &mut Staging<'_>,
    at: &str,
) -> Result<BucketRoute, BuildError> {
    // The CA bundle was read (once) when the configuration was validated.
    let extra_ca = bucket.s3.ca_cert_path.as_ref().map(|ca| ca.pem());
    let client = staging
        .client(&config.upstream, extra_ca)
        .map_err(|e| BuildError::new(format!("{at}.s3.ca_cert_path"), e))?;
    let backend = S3Backend::new(&bucket.s3, client)
        .map_err(|message| BuildError::new(format!("{at}.s3"), message))?;
    Ok(BucketRoute::new(
        &bucket.name,
        bucket.path_prefix.clone(),
        Arc::new(backend),
    ))
}
