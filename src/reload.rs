//! The reloadable proxy: an `ArcSwap` holding the configuration and the stack
//! built from it.
//!
//! A reload is load → validate → build → one atomic store. Each request loads
//! the snapshot once, clones its service and drops the guard before awaiting,
//! so a request never mixes two generations and in-flight requests finish on
//! the stack they started with.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use futures_util::future::{Either, Ready};
use http::{Request, Response};
use tower::util::Oneshot;
use tower::{Layer, Service, ServiceExt};

use crate::access_log::{self, AccessLogLayer};
use crate::audit::{self, AuditLayer, AuditLog};
use crate::auth::JwksCache;
use crate::body::{ProxyBody, empty};
use crate::build::BuildError;
use crate::config::Config;
use crate::health::Readiness;
use crate::load_shed::{LoadShed, LoadShedLayer};
use crate::request_id::{self, RequestIdLayer};
use crate::route::BucketRoute;
use crate::shared::Shared;
use crate::stack::{self, StackService};
use crate::telemetry::metrics::{CONFIG_GENERATION, CONFIG_RELOADS_TOTAL};
use crate::upstream::LeafService;

/// One configuration generation: the validated config and the stack built from it.
pub struct Snapshot {
    /// The configuration this generation serves.
    pub config: Arc<Config>,
    /// 1 for the first configuration, +1 per successful reload.
    pub generation: u64,
    /// The bucket routes (used by readiness probes).
    pub routes: Arc<[Arc<BucketRoute>]>,
    service: StackService,
    /// The admin JWKS key set, alive (and refreshed) while this generation is.
    _admin_keys: Option<Arc<JwksCache>>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("generation", &self.generation)
            .field("buckets", &self.routes.len())
            .finish_non_exhaustive()
    }
}

struct Inner {
    current: Arc<ArcSwap<Snapshot>>,
    shared: Shared,
    /// The audit log's writers, when `audit_log` is enabled (fixed at start).
    audit: Option<AuditLog>,
    /// Serialises reloads so generations are numbered in order.
    reload_lock: Mutex<()>,
}

/// The proxy as a `tower::Service`: clone it freely, mount it anywhere.
///
/// It accepts `Request<B>` for any body type (GET and HEAD carry no body; a
/// body is ignored) and never fails (`Error = Infallible`): every problem is
/// an HTTP answer. It is `Clone + Send + Sync + 'static`, so it mounts directly
/// with axum's `Router::nest_service` or `fallback_service`.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tower::ServiceExt;
/// let config = yatagarasu::Config::load(std::path::Path::new("configs/example.yaml"))?;
/// let proxy = yatagarasu::Proxy::builder(config).build()?;
/// let _probes = proxy.spawn_probes(); // keeps `/ready` up to date
/// let response = proxy
///     .oneshot(http::Request::get("/products/logo.png").body(())?)
///     .await?;
/// println!("{}", response.status());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
    /// Request id and access log around the reload seam, made once (their
    /// metric handles resolved once), cloned with the proxy.
    front: Front,
}

/// The services outside the reload seam.
type Front = request_id::RequestIdService<
    audit::AuditService<access_log::AccessLogService<LoadShed<SwapService>>>,
>;

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

/// Builds a [`Proxy`] from a validated [`Config`].
pub struct ProxyBuilder {
    config: Config,
    leaf: Option<LeafService>,
}

impl std::fmt::Debug for ProxyBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyBuilder")
            .field("buckets", &self.config.buckets.len())
            .field("custom_upstream", &self.leaf.is_some())
            .finish()
    }
}

impl ProxyBuilder {
    /// Sends signed S3 requests to `service` instead of the pooled hyper client
    /// (benchmarks, tests, custom transports). It sees exactly what S3 would.
    pub fn upstream(mut self, service: LeafService) -> Self {
        self.leaf = Some(service);
        self
    }

    /// Builds the first generation (connection pools are created lazily).
    ///
    /// Metric handles are resolved here, against the `metrics` recorder
    /// installed at that moment: install yours first, or the proxy records
    /// into the no-op recorder.
    pub fn build(self) -> Result<Proxy, BuildError> {
        let shared = Shared {
            leaf: self.leaf,
            ..Shared::default()
        };
        let built = stack::build(&self.config, &shared)?;
        let audit = (self.config.audit_log.as_ref())
            .map(|audit| AuditLog::start(audit, &self.config.upstream))
            .transpose()?;
        // Fixed at start: the layer is outside the reload seam.
        let max_in_flight = self.config.server.max_concurrent_requests;
        let snapshot = Snapshot {
            config: Arc::new(self.config),
            generation: 1,
            routes: built.routes,
            service: built.service,
            _admin_keys: built.admin_keys,
        };
        built.staged.commit(&shared);
        metrics::gauge!(CONFIG_GENERATION).set(1.0);
        let current = Arc::new(ArcSwap::from_pointee(snapshot));
        // Outside the seam, so even rejected requests are logged with their
        // id; load shedding inside the access log, whose body guard holds
        // each permit until the response has been sent.
        let shed = LoadShedLayer::new(max_in_flight);
        // The audit record outside the access log, whose figures it reuses.
        let front = RequestIdLayer.layer(AuditLayer::new(audit.as_ref()).layer(
            AccessLogLayer.layer(shed.layer(SwapService {
                current: current.clone(),
            })),
        ));
        Ok(Proxy {
            inner: Arc::new(Inner {
                current,
                shared,
                audit,
                reload_lock: Mutex::new(()),
            }),
            front,
        })
    }
}

impl Proxy {
    /// Starts building a proxy for `config`.
    pub fn builder(config: Config) -> ProxyBuilder {
        ProxyBuilder { config, leaf: None }
    }

    /// Builds a new stack for `config` and swaps it in atomically; returns the
    /// new generation. On error the old stack keeps serving.
    pub fn reload(&self, config: Config) -> Result<u64, BuildError> {
        let _serialised = self
            .inner
            .reload_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let result = stack::build(&config, &self.inner.shared);
        let built = match result {
            Ok(built) => built,
            Err(e) => {
                metrics::counter!(CONFIG_RELOADS_TOTAL, "result" => "failure").increment(1);
                return Err(e);
            }
        };
        let generation = self.inner.current.load().generation + 1;
        self.inner.current.store(Arc::new(Snapshot {
            config: Arc::new(config),
            generation,
            routes: built.routes,
            service: built.service,
            _admin_keys: built.admin_keys,
        }));
        // Only now that the generation is live: a failed build changed nothing.
        built.staged.commit(&self.inner.shared);
        metrics::counter!(CONFIG_RELOADS_TOTAL, "result" => "success").increment(1);
        metrics::gauge!(CONFIG_GENERATION).set(generation as f64);
        self.inner.shared.readiness.request_probe();
        Ok(generation)
    }

    /// Counts a reload that failed before reaching [`Proxy::reload`] (invalid file).
    pub fn record_failed_reload(&self) {
        metrics::counter!(CONFIG_RELOADS_TOTAL, "result" => "failure").increment(1);
    }

    /// The generation in force.
    pub fn generation(&self) -> u64 {
        self.inner.current.load().generation
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.inner.current.load().config.clone()
    }

    /// Readiness state (probe results, shutdown flag).
    pub fn readiness(&self) -> &Arc<Readiness> {
        &self.inner.shared.readiness
    }

    /// State that outlives reloads (pools, caches, key sets).
    pub fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// Number of distinct upstream connection pools alive.
    pub fn client_pools(&self) -> usize {
        self.inner.shared.client_pools()
    }

    /// Reopens the audit log file (after an external logrotate moved it).
    pub fn reopen_audit_log(&self) {
        if let Some(audit) = &self.inner.audit {
            audit.reopen();
        }
    }

    /// Writes out every queued audit record and stops the audit writers;
    /// call once the last response has been sent (graceful shutdown).
    pub async fn flush_audit_log(&self) {
        if let Some(audit) = &self.inner.audit {
            audit.shutdown().await;
        }
    }

    /// Runs the background readiness probes until the returned task is aborted.
    pub fn spawn_probes(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(crate::health::run_probes(
            self.inner.current.clone(),
            self.inner.shared.readiness.clone(),
        ))
    }
}

/// The reload seam: loads the snapshot once per request.
#[derive(Clone)]
pub struct SwapService {
    current: Arc<ArcSwap<Snapshot>>,
}

impl std::fmt::Debug for SwapService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwapService").finish_non_exhaustive()
    }
}

impl<B> Service<Request<B>> for SwapService {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Oneshot<StackService, Request<ProxyBody>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Clone the service out of the guard; the guard is dropped before any await.
        let service = self.current.load().service.clone();
        // GET and HEAD carry no body; whatever was sent is not forwarded.
        service.oneshot(request.map(|_| empty()))
    }
}

/// The future of [`Proxy`]'s `call`.
pub type ProxyFuture = request_id::ResponseFuture<
    audit::ResponseFuture<
        access_log::ResponseFuture<
            Either<
                Ready<Result<Response<ProxyBody>, Infallible>>,
                Oneshot<StackService, Request<ProxyBody>>,
            >,
        >,
    >,
>;

impl<B> Service<Request<B>> for Proxy {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = ProxyFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // Every service in front is always ready.
        self.front.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::body::{boxed, full};
    use crate::error::ProxyError;

    fn config(access_key: &str, with_docs: bool) -> Config {
        let docs = if with_docs {
            "  - {name: docs, path_prefix: /docs, s3: {bucket: docs-bkt, region: eu-west-1, endpoint: 'http://127.0.0.1:9', access_key: AK2, secret_key: SK2}}\n"
        } else {
            ""
        };
        let yaml = format!(
            "buckets:\n  - {{name: assets, path_prefix: /assets, s3: {{bucket: assets-bkt, region: us-east-1, endpoint: 'http://127.0.0.1:9', access_key: {access_key}, secret_key: SK}}}}\n{docs}"
        );
        Config::from_yaml_str_with_env(&yaml, &|_| None).unwrap()
    }

    type Seen = Arc<Mutex<Vec<http::request::Parts>>>;

    /// A leaf that records what S3 would see and answers with the path.
    fn recording_leaf(seen: Seen) -> LeafService {
        LeafService::new(tower::service_fn(move |request: Request<ProxyBody>| {
            let seen = seen.clone();
            async move {
                let (parts, _) = request.into_parts();
                let path = parts.uri.path().to_owned();
                seen.lock().unwrap().push(parts);
                Ok::<_, ProxyError>(Response::new(full(path)))
            }
        }))
    }

    async fn get(proxy: &Proxy, uri: &str) -> (u16, Bytes) {
        let response = proxy
            .clone()
            .oneshot(Request::get(uri).body(()).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    #[tokio::test]
    async fn requests_reach_the_leaf_signed_for_their_bucket() {
        let seen = Seen::default();
        let proxy = Proxy::builder(config("AK1", true))
            .upstream(recording_leaf(seen.clone()))
            .build()
            .unwrap();
        assert_eq!(
            get(&proxy, "/assets/a%20b.txt").await,
            (200, Bytes::from("/assets-bkt/a%20b.txt"))
        );
        assert_eq!(get(&proxy, "/docs/x").await.0, 200);
        let seen = seen.lock().unwrap();
        let auth = |i: usize| {
            seen[i].headers["authorization"]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert!(
            auth(0).starts_with("AWS4-HMAC-SHA256 Credential=AK1/"),
            "{}",
            auth(0)
        );
        assert!(auth(0).contains("/us-east-1/s3/aws4_request"));
        assert!(auth(1).starts_with("AWS4-HMAC-SHA256 Credential=AK2/"));
        assert!(auth(1).contains("/eu-west-1/s3/aws4_request"));
        assert_eq!(seen[0].headers["host"], "127.0.0.1:9");
        assert!(seen[0].headers.contains_key("x-amz-content-sha256"));
        assert!(seen[0].headers.contains_key("x-amz-date"));
    }

    #[tokio::test]
    async fn reload_swaps_credentials_and_routes_for_new_requests() {
        let seen = Seen::default();
        let proxy = Proxy::builder(config("AK1", true))
            .upstream(recording_leaf(seen.clone()))
            .build()
            .unwrap();
        assert_eq!(proxy.generation(), 1);
        assert_eq!(proxy.reload(config("AK9", false)).unwrap(), 2);
        assert_eq!(get(&proxy, "/assets/k").await.0, 200);
        assert_eq!(get(&proxy, "/docs/k").await.0, 404);
        let seen = seen.lock().unwrap();
        let auth = seen[0].headers["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AK9/"),
            "{auth}"
        );
    }

    #[tokio::test]
    async fn in_flight_response_finishes_on_its_generation_after_a_reload() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let rx = Arc::new(tokio::sync::Mutex::new(Some(rx)));
        let leaf = LeafService::new(tower::service_fn(move |_request: Request<ProxyBody>| {
            let rx = rx.clone();
            async move {
                let rx = rx.lock().await.take().expect("one streaming request");
                let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv()
                        .await
                        .map(|chunk| (Ok::<_, std::io::Error>(http_body::Frame::data(chunk)), rx))
                });
                Ok::<_, ProxyError>(Response::new(boxed(http_body_util::StreamBody::new(
                    stream,
                ))))
            }
        }));
        let proxy = Proxy::builder(config("AK1", true))
            .upstream(leaf)
            .build()
            .unwrap();
        let response = proxy
            .clone()
            .oneshot(Request::get("/docs/big").body(()).unwrap())
            .await
            .unwrap();
        tx.send(Bytes::from("first;")).await.unwrap();
        proxy.reload(config("AK1", false)).unwrap();
        assert_eq!(
            get(&proxy, "/docs/big").await.0,
            404,
            "new requests see the new generation"
        );
        tx.send(Bytes::from("second")).await.unwrap();
        drop(tx);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, Bytes::from("first;second"));
    }

    #[tokio::test]
    async fn reload_reuses_connection_pools() {
        let proxy = Proxy::builder(config("AK1", true)).build().unwrap();
        assert_eq!(proxy.client_pools(), 1);
        proxy.reload(config("AK2", false)).unwrap();
        assert_eq!(proxy.client_pools(), 1);
    }
}
