//! The only place that lists the layer order, in two parts.
//!
//! **Shared outer part**, outermost first. Request id, audit log, access log
//! and load shedding wrap the reload seam (see [`crate::Proxy`]) so even a
//! rejected request is logged and audited with its id. Below the seam, per
//! configuration generation: (client address, with trusted proxies) →
//! (request log, with `observability.request_logging`) → rescue → health →
//! security limits → route. Route picks the bucket and calls its stack.
//!
//! **Per bucket**, built once per generation with exactly the layers the
//! bucket configures: CORS (buckets with CORS rules) → `Accept-Ranges` →
//! error format (buckets with a fixed `errors`) → IP filter → rate limit by
//! client → authentication (private buckets) → authorization (buckets with a
//! policy) → rate limit by user → website (buckets with `website`) →
//! cache (while caching is enabled; after auth, so only authorized requests
//! reach cached bytes) → 404 fallback (buckets with `fallback_on_404`) →
//! replica failover (buckets with `replicas`) → its S3 targets.
//!
//! **Per S3 target** (`target_stack`: the bucket's own `s3` block, each
//! replica, the fallback bucket, each with its own backend and timeout):
//! retry → circuit breaker → S3 request → SigV4 → upstream, retry and
//! breaker only where the bucket configures them. A layer a bucket does not
//! configure is an `Either` arm that costs one branch.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use tower::ServiceBuilder;
use tower::retry::budget::TpsBudget;
use tower::util::{BoxCloneSyncService, Either};

use crate::accept_ranges::AcceptRangesLayer;
use crate::auth::{AuthLayer, JwksCache, KeySets};
use crate::authz::AuthzLayer;
use crate::backend::S3Backend;
use crate::body::ProxyBody;
use crate::breaker::CircuitBreakerLayer;
use crate::build::{Staged, Staging};
use crate::cache::{CacheGeneration, CacheLayer};
use crate::client_addr::ClientAddrLayer;
use crate::config::{BucketConfig, Config, S3Config};
use crate::cors::{CorsLayer, UnroutedCorsLayer, any_bucket_answers};
use crate::error_format::ErrorFormatLayer;
use crate::failover::{Failover, Target};
use crate::fallback::FallbackLayer;
use crate::health::HealthLayer;
use crate::ip_filter::IpFilterLayer;
use crate::limits::SecurityLimitsLayer;
use crate::rate_limit::RateLimits;
use crate::request_log::RequestLogLayer;
use crate::rescue::RescueLayer;
use crate::retry::{RetryLayer, RetryPolicy, bucket_budget};
use crate::route::{BucketRoute, BucketService, Mounted, ReplicaRoute, Route, RouteTable};
use crate::s3_request::S3RequestLayer;
use crate::shared::Shared;
use crate::sigv4::SigV4Layer;
use crate::upstream::{ConnectionCap, Upstream};
use crate::website::WebsiteLayer;

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
        // Decides the client address once (from trusted proxies' headers):
        // below the reload seam, so `server.trusted_proxies` reloads; absent
        // when nobody is trusted (the listener's peer address stands).
        .option_layer(ClientAddrLayer::new(&config.server.trusted_proxies))
        // Request and response lines (`observability.request_logging`):
        // above the rescue, so they show every answer as the client gets
        // it, and below the client address, which they name.
        .option_layer(RequestLogLayer::new(config))
        // Errors and panics of every layer below become typed JSON answers here.
        .layer(RescueLayer)
        // Probes answer before anything that could reject them.
        .layer(HealthLayer::new(
            shared.readiness.clone(),
            names,
            shared.started,
        ))
        // Refusals below (security limits, unknown prefixes) carry the
        // top-level `cors` fields, so a page can read why; a bucket's own
        // answers are left to its CORS layer.
        .option_layer(UnroutedCorsLayer::new(config))
        // Cheap, stateless rejections before any lookup: 405 for methods
        // (CORS preflights pass when a bucket answers them), 414/431/413
        // beyond the size limits, 400 for unsafe paths.
        .layer(
            SecurityLimitsLayer::new(config.server.security_limits)
                .with_preflights(any_bucket_answers(config)),
        )
        // Longest-prefix bucket lookup; inserts the route and object key and
        // calls the bucket's own stack.
        .service(Route::new(Arc::new(table)));
    BoxCloneSyncService::new(service)
}

/// What every S3 target of one bucket is built from, besides its own backend.
struct BucketTargets<'a> {
    parts: &'a Parts<'a>,
    bucket: &'a BucketConfig,
    route: &'a BucketRoute,
    /// `upstream.max_connections_per_bucket`, shared by all the bucket's targets.
    cap: Option<ConnectionCap>,
    /// The bucket's retry budget (`s3.retry`), shared by all its targets.
    budget: Option<Arc<TpsBudget>>,
}

/// One bucket's stack: only the layers it configures, down to its S3 targets.
fn bucket_stack(
    parts: &Parts<'_>,
    bucket: &BucketConfig,
    keys: &mut KeySets<'_>,
    staging: &mut Staging<'_>,
    at: &str,
) -> Result<Mounted<impl BucketService>, BuildError> {
    let route = Arc::new(bucket_route(parts.config, bucket, staging, at)?);
    let auth = AuthLayer::for_bucket(bucket, keys, staging, at)?;
    let authz = authz_layer(parts, bucket, staging, at)?;
    let cache = (parts.cache.as_ref()).map(|cache| CacheLayer::for_bucket(cache, bucket));
    let shared = BucketTargets {
        parts,
        bucket,
        route: &route,
        // One bucket cannot take every upstream socket: its targets share one cap.
        cap: ConnectionCap::for_bucket(&parts.config.upstream),
        // One retry budget per bucket, shared by its targets.
        budget: bucket.retry.as_ref().map(bucket_budget),
    };
    let fallback = fallback_on_404(&shared, staging, at)?;
    let access = ServiceBuilder::new()
        // CORS first: a preflight is answered before any filter, limit or
        // token check, and every answer below (errors too) gets its fields.
        .option_layer(CorsLayer::for_bucket(parts.config, bucket))
        // Every object answer (from S3, the cache, a website document) says
        // `Accept-Ranges: bytes`, added once here rather than per answer path.
        .layer(AcceptRangesLayer)
        // A bucket with a fixed `errors` format renders every error of its
        // stack in it; `auto` buckets leave it to the rescue layer's detection.
        .option_layer(ErrorFormatLayer::for_bucket(bucket))
        // Refused addresses next: they reach no limiter, token check or S3.
        .option_layer(IpFilterLayer::for_bucket(bucket))
        // Cheap shedding before any token is verified: global, per client
        // address, per bucket (each only where configured).
        .option_layer(parts.rate_limits.client_layer(bucket))
        // Private buckets: verify the token; claims become an extension.
        .option_layer(auth)
        // Policy engines decide with the claims as input.
        .option_layer(authz)
        // Per user (the verified claim; anonymous: the address), once the
        // claims are known and before cached bytes are served.
        .option_layer(parts.rate_limits.user_layer(bucket));
    // The objects half, boxed: below an optional layer its inner service's
    // type appears twice (`Either<Layered, Inner>`), so without a box the
    // ten optional layers of a bucket name the targets' type 2^10 times,
    // giving symbol names of up to 50 MB and test binaries of 1.4 GB. One
    // allocation per request buys type names a thousandth of that size.
    let objects = BoxCloneSyncService::new(
        ServiceBuilder::new()
            // Website buckets: folders name the index document and a missing key
            // falls back to the error document; after auth (which judges the path
            // asked for), above the cache (which caches each document under its
            // real key).
            .option_layer(WebsiteLayer::for_bucket(bucket))
            // Only authorized requests reach cached bytes.
            .option_layer(cache)
            // A key the targets do not have is looked up in the migration source
            // (above failover: a 404 is final for every replica).
            .option_layer(fallback)
            .service(targets(&shared, staging)),
    );
    let service = access.service(objects);
    Ok(Mounted { route, service })
}

/// The bucket's authorization layer (buckets with a policy); remote engines
/// are reached over a pooled client of this generation.
fn authz_layer(
    parts: &Parts<'_>,
    bucket: &BucketConfig,
    staging: &mut Staging<'_>,
    at: &str,
) -> Result<Option<AuthzLayer>, BuildError> {
    let mut client = || {
        staging
            .client(&parts.config.upstream, None)
            .map_err(|e| e.to_string())
    };
    AuthzLayer::for_bucket(bucket, &parts.shared.authz, &mut client, at)
}

/// The bucket's S3 targets: its own s3 section, or its replicas in priority
/// order behind failover.
fn targets(
    shared: &BucketTargets<'_>,
    staging: &mut Staging<'_>,
) -> Either<Failover<impl BucketService + use<>>, impl BucketService + use<>> {
    let (parts, route) = (shared.parts, shared.route);
    let mut replicas = Vec::with_capacity(route.replicas.len());
    for (replica, config) in route.replicas.iter().zip(&shared.bucket.replicas) {
        let timeout = config
            .timeout
            .unwrap_or(parts.config.server.request_timeout);
        let target = TargetSpec {
            name: replica.name.clone(),
            s3: &config.s3,
            backend: replica.backend.clone(),
            timeout,
        };
        replicas.push(target_stack(shared, target, staging));
    }
    match Failover::new(route.name.clone(), replicas) {
        // Each replica signs with its own identity and region; failover
        // moves on only when a replica fails, never on a 4xx.
        Some(failover) => Either::Left(failover),
        None => {
            let primary = TargetSpec {
                name: Arc::from(PRIMARY),
                s3: &shared.bucket.s3,
                backend: route.backend.clone(),
                timeout: parts.config.server.request_timeout,
            };
            Either::Right(target_stack(shared, primary, staging).service)
        }
    }
}

/// The `replica` label of the bucket's own `s3` block.
pub(crate) const PRIMARY: &str = "primary";

/// One S3 target of a bucket, as [`target_stack`] builds it.
struct TargetSpec<'a> {
    /// [`PRIMARY`], the replica's name or `fallback_on_404` (the `replica`
    /// metric label, and the failover's `from`/`to`).
    name: Arc<str>,
    /// Its settings: what its breaker's identity across reloads is made of.
    s3: &'a S3Config,
    /// Its endpoint, signing identity and pooled client.
    backend: Arc<S3Backend>,
    /// The longest wait for its response head, and between body frames.
    timeout: Duration,
}

/// One S3 target's stack: retry → circuit breaker → S3 request → SigV4 →
/// upstream, with the retry and breaker layers only where the bucket
/// configures them. The breaker comes from (or, at commit, joins) the
/// registry, so it outlives a reload that leaves the target unchanged.
fn target_stack(
    shared: &BucketTargets<'_>,
    target: TargetSpec<'_>,
    staging: &mut Staging<'_>,
) -> Target<impl BucketService + use<>> {
    let (parts, bucket) = (shared.parts, shared.bucket);
    let retry = (bucket.retry.as_ref().zip(shared.budget.as_ref())).map(|(retry, budget)| {
        RetryLayer::new(RetryPolicy::new(*retry, budget.clone(), &bucket.name))
    });
    let breaker = bucket.circuit_breaker.map(|settings| {
        let registry = &parts.shared.breakers;
        let breaker = registry.stage(staging, &bucket.name, &target.name, target.s3, settings);
        CircuitBreakerLayer::new(breaker)
    });
    let leaf = match &parts.shared.leaf {
        Some(leaf) => Either::Right(leaf.clone()),
        // The target's pooled keep-alive client, with its timeout, holding a
        // permit of the bucket's connection cap while it sends.
        None => Either::Left(
            Upstream::new(
                target.backend.clone(),
                shared.route.metrics.clone(),
                target.timeout,
            )
            .with_connection_cap(shared.cap.clone())
            // Its spans name the target (OpenTelemetry, when tracing is on).
            .with_replica(target.name.clone()),
        ),
    };
    let service = ServiceBuilder::new()
        // Failed reads are tried again, within the bucket's budget; outside
        // the breaker, so every try is counted and an open one stops them.
        .option_layer(retry)
        // A failing target is refused at once instead of asked again.
        .option_layer(breaker)
        // Only allowlisted headers and query parameters go to S3.
        .layer(S3RequestLayer::new(target.backend.clone()))
        // The last step that touches the request: nothing may change it after signing.
        .layer(SigV4Layer::new(target.backend))
        .service(leaf);
    Target {
        name: target.name,
        service,
    }
}

/// The bucket's `fallback_on_404` layer, when it has one.
fn fallback_on_404(
    shared: &BucketTargets<'_>,
    staging: &mut Staging<'_>,
    at: &str,
) -> Result<Option<FallbackLayer>, BuildError> {
    let (parts, route) = (shared.parts, shared.route);
    let Some(s3) = &shared.bucket.fallback_on_404 else {
        return Ok(None);
    };
    let backend = backend(
        parts.config,
        s3,
        staging,
        &format!("{at}.s3.fallback_on_404"),
    )?;
    let fallback = TargetSpec {
        name: Arc::from("fallback_on_404"),
        s3,
        backend,
        timeout: parts.config.server.request_timeout,
    };
    let target = target_stack(shared, fallback, staging);
    let service = BoxCloneSyncService::new(target.service);
    Ok(Some(FallbackLayer::new(route.name.clone(), service)))
}

/// The bucket's route: its S3 target (endpoint, identity, pooled client),
/// its replicas' targets, and its metrics.
fn bucket_route(
    config: &Config,
    bucket: &BucketConfig,
    staging: &mut Staging<'_>,
    at: &str,
) -> Result<BucketRoute, BuildError> {
    let mut route = BucketRoute::new(
        &bucket.name,
        bucket.path_prefix.clone(),
        backend(config, &bucket.s3, staging, &format!("{at}.s3"))?,
    );
    // A website serves its index document at the bare prefix.
    route.serves_bare_prefix = bucket.website.is_some();
    for (i, replica) in bucket.replicas.iter().enumerate() {
        let at = format!("{at}.s3.replicas[{i}]");
        route.replicas.push(ReplicaRoute {
            name: Arc::from(replica.name.as_str()),
            backend: backend(config, &replica.s3, staging, &at)?,
        });
    }
    Ok(route)
}

/// One S3 target's backend: its addressing, identity and pooled client.
fn backend(
    config: &Config,
    s3: &S3Config,
    staging: &mut Staging<'_>,
    at: &str,
) -> Result<Arc<S3Backend>, BuildError> {
    // The CA bundle was read (once) when the configuration was validated.
    let extra_ca = s3.ca_cert_path.as_ref().map(|ca| ca.pem());
    let client = staging
        .client(&config.upstream, extra_ca)
        .map_err(|e| BuildError::new(format!("{at}.ca_cert_path"), e))?;
    let mut backend = S3Backend::new(s3, client).map_err(|message| BuildError::new(at, message))?;
    // Run-time credentials: shared with the live generation when the source
    // is unchanged, so a reload never waits for a fetch.
    if let Some(source) = &s3.credential_source {
        backend = backend.with_live_credentials(staging.live_credentials(source));
    }
    Ok(Arc::new(backend))
}
