//! The only place that lists the layer order, in two parts.
//!
//! **Shared outer part**, outermost first. Request id and access log wrap the
//! reload seam (see [`crate::Proxy`]) so even a rejected request is logged
//! with its id. Below the seam, per configuration generation: rescue →
//! health → security limits → route. Route picks the bucket and calls its
//! stack.
//!
//! **Per bucket**, built once per generation with exactly the layers the
//! bucket configures: (rate limit by client) → authentication (private
//! buckets) → authorization (buckets with a policy) → (rate limit by user) →
//! cache (while caching is enabled; after auth, so only authorized requests
//! reach cached bytes) → its S3 target.
//!
//! **Per S3 target** (`target_stack`; the bucket's own `s3` block today,
//! one per replica with failover): retry → circuit breaker → S3 request →
//! SigV4 → upstream, retry and breaker only where the bucket configures them.
//! A layer a bucket does not configure is an `Either` arm that costs one
//! branch; the parenthesised concerns slot in at the marked points.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use tower::ServiceBuilder;
use tower::retry::budget::TpsBudget;
use tower::util::{BoxCloneSyncService, Either};

use crate::auth::{AuthLayer, JwksCache, KeySets};
use crate::authz::AuthzLayer;
use crate::backend::S3Backend;
use crate::body::ProxyBody;
use crate::breaker::CircuitBreakerLayer;
use crate::build::{Staged, Staging};
use crate::cache::{CacheGeneration, CacheLayer};
use crate::config::{BucketConfig, Config, S3Config};
use crate::health::HealthLayer;
use crate::limits::SecurityLimitsLayer;
use crate::rescue::RescueLayer;
use crate::retry::{RetryLayer, RetryPolicy, bucket_budget};
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
    // One budget per bucket, shared by its targets: retries are bounded per bucket.
    let budget = bucket.retry.as_ref().map(bucket_budget);
    let primary = Target {
        name: PRIMARY,
        s3: &bucket.s3,
        backend: route.backend.clone(),
        timeout: parts.config.server.request_timeout,
    };
    let target = target_stack(parts, bucket, &route, budget.as_ref(), primary, staging);
    let service = ServiceBuilder::new()
        // (rate limit by client slots in here)
        // Private buckets: verify the token; claims become an extension.
        .option_layer(auth)
        // Policy engines decide with the claims as input.
        .option_layer(authz)
        // (rate limit by user slots in here)
        // Only authorized requests reach cached bytes.
        .option_layer(cache)
        // The bucket's S3 target (the replicas' failover slots in here).
        .service(target);
    Ok(Mounted { route, service })
}

/// The `replica` label of the bucket's own `s3` block.
pub(crate) const PRIMARY: &str = "primary";

/// One S3 target of a bucket, as [`target_stack`] builds it.
pub(crate) struct Target<'a> {
    /// [`PRIMARY`] for the bucket's own `s3` block, else the replica's name
    /// (the `replica` metric label).
    pub(crate) name: &'a str,
    /// Its settings: what its breaker's identity across reloads is made of.
    pub(crate) s3: &'a S3Config,
    /// Its endpoint, signing identity and pooled client.
    pub(crate) backend: Arc<S3Backend>,
    /// The longest wait for its response head, and between body frames.
    pub(crate) timeout: Duration,
}

/// One S3 target's stack: retry → circuit breaker → S3 request → SigV4 →
/// upstream, with the retry and breaker layers only where the bucket
/// configures them. `budget` is the bucket's retry budget (shared by its
/// targets); the breaker comes from (or, at commit, joins) the registry.
fn target_stack(
    parts: &Parts<'_>,
    bucket: &BucketConfig,
    route: &BucketRoute,
    budget: Option<&Arc<TpsBudget>>,
    target: Target<'_>,
    staging: &mut Staging<'_>,
) -> impl BucketService + use<> {
    let retry = (bucket.retry.as_ref().zip(budget)).map(|(retry, budget)| {
        RetryLayer::new(RetryPolicy::new(*retry, budget.clone(), &bucket.name))
    });
    let breaker = bucket.circuit_breaker.map(|settings| {
        let registry = &parts.shared.breakers;
        let breaker = registry.stage(staging, &bucket.name, target.name, target.s3, settings);
        CircuitBreakerLayer::new(breaker)
    });
    let leaf = match &parts.shared.leaf {
        Some(leaf) => Either::Right(leaf.clone()),
        // The target's pooled keep-alive client, with its timeout.
        None => Either::Left(Upstream::new(
            target.backend.clone(),
            route.metrics.clone(),
            target.timeout,
        )),
    };
    ServiceBuilder::new()
        // Failed reads are tried again, within the bucket's budget; outside
        // the breaker, so every try is counted and an open one stops them.
        .option_layer(retry)
        // A failing target is refused at once instead of asked again.
        .option_layer(breaker)
        // Only allowlisted headers and query parameters go to S3.
        .layer(S3RequestLayer::new(target.backend.clone()))
        // The last step that touches the request: nothing may change it after signing.
        .layer(SigV4Layer::new(target.backend))
        .service(leaf)
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
