//! The cache service: hit, miss (with coalescing and streaming fill),
//! revalidation and stale-if-error, bypass.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::future::{Either, Ready, ready};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use super::coalesce::{Leader, Role, Shared};
use super::fill::{Fill, FillBody};
use super::key::BackendId;
use super::policy::{self as storage, StoragePolicy};
use super::stats::{BucketCounters, Outcome};
use super::store::Store;
use super::{CacheKey, CachedObject};
use crate::body::{ProxyBody, boxed, empty};
use crate::config::CacheTierKind;
use crate::error::ProxyError;
use crate::query::ForwardedQuery;
use crate::route::{BucketRoute, ObjectKey};

/// `X-Cache`: what the cache did.
pub const X_CACHE: http::HeaderName = http::HeaderName::from_static("x-cache");

/// The `Warning` sent with a stale answer (RFC 7234 §5.5.1).
const STALE_WARNING: &str = "110 - \"Response is Stale\"";

/// Request headers that make a request conditional or partial.
const CONDITIONAL: [header::HeaderName; 6] = [
    header::RANGE,
    header::IF_MATCH,
    header::IF_NONE_MATCH,
    header::IF_MODIFIED_SINCE,
    header::IF_UNMODIFIED_SINCE,
    header::IF_RANGE,
];

/// One bucket's cache settings in this configuration generation.
#[derive(Debug)]
pub(crate) struct BucketPolicy {
    pub(crate) enabled: bool,
    /// TTL and item limit of this bucket's entries.
    pub(crate) storage: StoragePolicy,
    pub(crate) counters: Arc<BucketCounters>,
    /// The S3 backend the bucket name stands for, part of every key.
    pub(crate) backend: BackendId,
}

/// What every request of one generation needs: the store and the bucket policies.
#[derive(Debug)]
pub(crate) struct CacheContext {
    pub(crate) store: Arc<Store>,
    pub(crate) buckets: HashMap<Arc<str>, BucketPolicy>,
    pub(crate) stale_if_error: Duration,
    /// Longest wait for a coalesced fetch before fetching alone.
    pub(crate) coalesce_wait: Duration,
}

/// The service made by [`super::CacheLayer`].
#[derive(Debug, Clone)]
pub struct Cache<S> {
    pub(super) inner: S,
    pub(super) context: Option<Arc<CacheContext>>,
}

/// The inner stack, type-erased so the request futures are not generic.
type Inner = BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, ProxyError>;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

impl<S> Service<Request<ProxyBody>> for Cache<S>
where
    S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future =
        Either<S::Future, Either<Ready<Result<Response<ProxyBody>, ProxyError>>, BoxFuture>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ProxyBody>) -> Self::Future {
        let Some(context) = &self.context else {
            return Either::Left(self.inner.call(request));
        };
        // Parsed once: the key, the bypass and the S3 request all read this form.
        ForwardedQuery::remember(&mut request);
        // The hot path: fresh in the memory tier (looked up first) is
        // answered here, with no task, no boxed future and no inner clone.
        if let Some(Ok(target)) = classify(context, &request)
            && let Some(object) = context.store.fresh_memory_hit(&target.key)
        {
            target.policy.counters.record(Outcome::Hit);
            let (parts, _) = request.into_parts();
            let answer = serve(&parts, &object, Marker::Hit(CacheTierKind::Memory));
            return Either::Right(Either::Left(ready(answer)));
        }
        // The service polled ready is the one used first (tower's clone idiom).
        let clone = self.inner.clone();
        let inner = Inner::new(std::mem::replace(&mut self.inner, clone));
        Either::Right(Either::Right(Box::pin(handle(
            context.clone(),
            inner,
            request,
        ))))
    }
}

/// Where a cacheable request is looked up.
struct Target<'a> {
    policy: &'a BucketPolicy,
    key: CacheKey,
}

/// The bucket policy and key of a request, or why it is not looked up.
fn classify<'a>(
    context: &'a CacheContext,
    request: &Request<ProxyBody>,
) -> Option<Result<Target<'a>, &'a BucketPolicy>> {
    let route = request.extensions().get::<Arc<BucketRoute>>()?;
    let object = request.extensions().get::<ObjectKey>()?;
    let policy = context.buckets.get(&route.name)?;
    let method = request.method();
    if !policy.enabled || (method != Method::GET && method != Method::HEAD) {
        return Some(Err(policy));
    }
    // Judged on the decoded parameters S3 will receive, never the raw query.
    let forwarded = ForwardedQuery::of(request);
    // These change the answer (a part, overridden headers): never cached.
    if forwarded.alters_answer() {
        return Some(Err(policy));
    }
    Some(Ok(Target {
        policy,
        key: CacheKey {
            bucket: route.name.clone(),
            backend: policy.backend,
            object: object.0.clone(),
            version_id: forwarded.version_id().map(str::to_owned),
        },
    }))
}

async fn handle(
    context: Arc<CacheContext>,
    inner: Inner,
    request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let target = match classify(&context, &request) {
        None => return forward(inner, request).await,
        Some(Err(policy)) => {
            policy.counters.record(Outcome::Bypass);
            let response = forward(inner, request).await?;
            return Ok(mark(response, Marker::Bypass));
        }
        Some(Ok(target)) => target,
    };
    let store = &context.store;
    match store.lookup(&target.key).await {
        Some(found) if is_fresh(&found.object) => {
            target.policy.counters.record(Outcome::Hit);
            let (parts, _) = request.into_parts();
            serve(&parts, &found.object, Marker::Hit(found.tier))
        }
        Some(found) => revalidate(&context, target, inner, request, found.object, found.tier).await,
        None => miss(&context, target, inner, request).await,
    }
}

/// Sends `request` down the stack (a named, boxed future: keeps the async
/// functions above free of the inner service's future type).
fn forward(inner: Inner, request: Request<ProxyBody>) -> BoxFuture {
    Box::pin(inner.oneshot(request))
}

fn is_fresh(object: &CachedObject) -> bool {
    SystemTime::now() < object.meta.fresh_until
}

fn is_plain(headers: &HeaderMap) -> bool {
    !CONDITIONAL.iter().any(|name| headers.contains_key(name))
}

async fn miss(
    context: &CacheContext,
    target: Target<'_>,
    inner: Inner,
    request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let Target { policy, key } = target;
    // HEAD has no body to store; a conditional or range miss goes to S3 unchanged.
    if request.method() == Method::HEAD || !is_plain(request.headers()) {
        policy.counters.record(Outcome::Miss);
        let response = forward(inner, request).await?;
        return Ok(mark(response, Marker::Miss));
    }
    let store = &context.store;
    let mut retried = false;
    loop {
        match store.coalescer.join(&key) {
            Role::Leader(leader) => {
                // A fill may have completed between the lookup and joining.
                if let Some(object) = store.memory_get(&key).filter(is_fresh) {
                    leader.finish(Some(object.clone()));
                    policy.counters.record(Outcome::Hit);
                    let (parts, _) = request.into_parts();
                    return serve(&parts, &object, Marker::Hit(CacheTierKind::Memory));
                }
                policy.counters.record(Outcome::Miss);
                let epoch = store.epoch_for(&key);
                let response = forward(inner, request).await?;
                let target = FillTarget {
                    store,
                    key,
                    epoch,
                    leader: Some(leader),
                };
                return Ok(mark(start_fill(policy, response, target), Marker::Miss));
            }
            Role::Waiter(waiter) => {
                if !retried {
                    policy.counters.record_coalesced();
                }
                let outcome = tokio::time::timeout(context.coalesce_wait, waiter.outcome())
                    .await
                    // Waited long enough: fetch alone.
                    .unwrap_or(Shared::NotStored);
                match outcome {
                    Shared::Stored(object) => {
                        policy.counters.record(Outcome::Miss);
                        let (parts, _) = request.into_parts();
                        return serve(&parts, &object, Marker::Miss);
                    }
                    // The leader's transfer broke off: join again, once (one
                    // of the waiters becomes the next leader).
                    Shared::Aborted if !retried => retried = true,
                    // Too large, not cacheable, or failed twice: fetch alone.
                    Shared::Aborted | Shared::NotStored => {
                        policy.counters.record(Outcome::Miss);
                        return Ok(mark(forward(inner, request).await?, Marker::Miss));
                    }
                }
            }
        }
    }
}

/// Where a fill goes.
struct FillTarget<'a> {
    store: &'a Arc<Store>,
    key: CacheKey,
    epoch: u64,
    leader: Option<Leader>,
}

/// Tees a storable 200 into the cache; anything else passes through
/// untouched (and coalesced waiters are told to fetch for themselves).
fn start_fill(
    policy: &BucketPolicy,
    response: Response<ProxyBody>,
    target: FillTarget<'_>,
) -> Response<ProxyBody> {
    let now = SystemTime::now();
    match storage::storable(response.status(), response.headers(), now, &policy.storage) {
        Ok(meta) => {
            let fill = Fill {
                store: target.store.clone(),
                key: target.key,
                meta,
                epoch: target.epoch,
                leader: target.leader,
            };
            response.map(|body| boxed(FillBody::new(body, fill)))
        }
        Err(reason) => {
            tracing::debug!(%reason, "answer not cached");
            if let Some(leader) = target.leader {
                leader.finish(None);
            }
            response
        }
    }
}

async fn revalidate(
    context: &CacheContext,
    target: Target<'_>,
    inner: Inner,
    request: Request<ProxyBody>,
    stale: CachedObject,
    tier: CacheTierKind,
) -> Result<Response<ProxyBody>, ProxyError> {
    let Target { policy, key } = target;
    let store = &context.store;
    let (parts, _) = request.into_parts();
    let plain = is_plain(&parts.headers);
    // Concurrent requests for a stale entry share one revalidation.
    let leader = if plain && parts.method == Method::GET {
        match store.coalescer.join(&key) {
            Role::Leader(leader) => Some(leader),
            Role::Waiter(waiter) => {
                policy.counters.record_coalesced();
                let outcome = tokio::time::timeout(context.coalesce_wait, waiter.outcome()).await;
                if let Ok(Shared::Stored(object)) = outcome {
                    policy.counters.record(Outcome::Hit);
                    return serve(&parts, &object, Marker::Hit(tier));
                }
                // The leader got nothing usable: revalidate alone.
                None
            }
        }
    } else {
        None
    };
    let mut check = Request::from_parts(parts.clone(), empty());
    for name in &CONDITIONAL {
        check.headers_mut().remove(name);
    }
    if let Some(etag) = stale
        .meta
        .etag
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        check.headers_mut().insert(header::IF_NONE_MATCH, etag);
    }
    let epoch = store.epoch_for(&key);
    match forward(inner.clone(), check).await {
        Ok(response) if response.status() == StatusCode::NOT_MODIFIED => {
            let now = SystemTime::now();
            match storage::refresh(&stale.meta, response.headers(), now, &policy.storage) {
                Ok(meta) => {
                    let fresh = CachedObject {
                        meta: Arc::new(meta),
                        body: stale.body.clone(),
                    };
                    let stored = store.insert(&key, &fresh, epoch);
                    if let Some(leader) = leader {
                        leader.finish(stored.then(|| fresh.clone()));
                    }
                    policy.counters.record(Outcome::Hit);
                    serve(&parts, &fresh, Marker::Hit(tier))
                }
                Err(reason) => {
                    // A 304 for another representation, or now uncacheable:
                    // drop the entry and ask S3 what the client asked.
                    tracing::debug!(%reason, "revalidation refused; entry dropped");
                    store.forget(&key, epoch).await;
                    drop(leader);
                    policy.counters.record(Outcome::Miss);
                    let response = forward(inner, Request::from_parts(parts, empty())).await?;
                    Ok(mark(response, Marker::Miss))
                }
            }
        }
        Ok(response) => {
            // The object changed (or S3 ignored the validator): the old
            // entry goes from every tier; the new answer may replace it.
            let epoch = store.forget(&key, epoch).await;
            policy.counters.record(Outcome::Miss);
            if plain && parts.method == Method::GET {
                let target = FillTarget {
                    store,
                    key,
                    epoch,
                    leader,
                };
                Ok(mark(start_fill(policy, response, target), Marker::Miss))
            } else if plain {
                Ok(mark(response, Marker::Miss))
            } else {
                // The client asked for a range or a condition: ask S3 exactly that.
                drop(response);
                let response = forward(inner, Request::from_parts(parts, empty())).await?;
                Ok(mark(response, Marker::Miss))
            }
        }
        Err(error)
            if is_upstream_failure(&error)
                && within_stale_window(&stale, context.stale_if_error) =>
        {
            tracing::warn!(%error, "S3 failed; serving a stale cached object");
            policy.counters.record(Outcome::Stale);
            serve(&parts, &stale, Marker::Stale)
        }
        Err(error) => {
            if matches!(&error, ProxyError::S3 { status, .. } if status.is_client_error()) {
                store.forget(&key, epoch).await;
            }
            policy.counters.record(Outcome::Miss);
            Err(error)
        }
    }
}

/// S3 could not answer (5xx, timeout, connection): the cases stale-if-error covers.
fn is_upstream_failure(error: &ProxyError) -> bool {
    match error {
        ProxyError::S3 { status, .. } => status.is_server_error(),
        ProxyError::Connect(_) | ProxyError::Timeout(_) | ProxyError::UpstreamProtocol(_) => true,
        _ => false,
    }
}

/// Whether `object` may still be served because S3 failed: within the
/// configured window past its TTL, as its own `Cache-Control` allows.
fn within_stale_window(object: &CachedObject, configured: Duration) -> bool {
    let window = storage::stale_window(&object.meta, configured);
    // An entry read from a shared tier may carry any `fresh_until`: past the
    // end of the clock, the window never closes.
    !window.is_zero()
        && object
            .meta
            .fresh_until
            .checked_add(window)
            .is_none_or(|until| SystemTime::now() <= until)
}

/// What `X-Cache` says.
#[derive(Debug, Clone, Copy)]
enum Marker {
    Hit(CacheTierKind),
    Miss,
    Stale,
    Bypass,
}

impl Marker {
    fn value(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Hit(CacheTierKind::Memory) => "HIT memory",
            Self::Hit(CacheTierKind::Disk) => "HIT disk",
            Self::Hit(CacheTierKind::Redis) => "HIT redis",
            Self::Miss => "MISS",
            Self::Stale => "STALE",
            Self::Bypass => "BYPASS",
        })
    }
}

fn mark(mut response: Response<ProxyBody>, marker: Marker) -> Response<ProxyBody> {
    response.headers_mut().insert(X_CACHE, marker.value());
    if matches!(marker, Marker::Stale) {
        response
            .headers_mut()
            .insert(header::WARNING, HeaderValue::from_static(STALE_WARNING));
    }
    response
}

/// Answers the request from `object`.
fn serve(
    parts: &Parts,
    object: &CachedObject,
    marker: Marker,
) -> Result<Response<ProxyBody>, ProxyError> {
    let response = super::serve::respond(object, &parts.method, &parts.headers, SystemTime::now())?;
    Ok(mark(response, marker))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use bytes::Bytes;
    use http_body_util::BodyExt;
    use tower::Layer;

    use super::*;
    use crate::body::full;
    use crate::cache::CacheLayer;
    use crate::config::Config;
    use crate::shared::Shared;
    use crate::upstream::S3Backend;

    type Seen = Arc<Mutex<Vec<http::request::Parts>>>;

    fn config() -> Config {
        Config::from_yaml_str_with_env(
            "cache: {enabled: true}\nbuckets:\n  - {name: b, path_prefix: /b, s3: {bucket: b-bucket, region: us-east-1, endpoint: 'http://127.0.0.1:9', access_key: A, secret_key: S}}\n",
            &|_| None,
        )
        .unwrap()
    }

    /// A cache over a stub S3 that answers `status` with a 5-byte body and records requests.
    fn cache(status: StatusCode, with_length: bool) -> (Cache<Inner>, Seen) {
        let seen: Seen = Arc::default();
        let recorder = seen.clone();
        let stub = Inner::new(tower::service_fn(move |request: Request<ProxyBody>| {
            recorder.lock().unwrap().push(request.into_parts().0);
            async move {
                let mut response = Response::new(full("hello"));
                *response.status_mut() = status;
                if with_length {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("5"));
                }
                Ok::<_, ProxyError>(response)
            }
        }));
        let layer = CacheLayer::build(&config(), &Shared::default()).unwrap();
        (layer.layer(stub), seen)
    }

    fn request(method: Method, headers: &[(&str, &str)]) -> Request<ProxyBody> {
        let mut request = Request::new(empty());
        *request.method_mut() = method;
        *request.uri_mut() = http::Uri::from_static("/b/key.txt");
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let route = BucketRoute::new("b", "/b", Arc::new(S3Backend::for_tests()));
        request.extensions_mut().insert(Arc::new(route));
        request.extensions_mut().insert(ObjectKey("key.txt".into()));
        request
    }

    #[test]
    fn a_stale_window_past_the_end_of_the_clock_stays_open() {
        // As a shared tier may hand back: fresh until the last representable second.
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
        let object = CachedObject {
            meta: Arc::new(crate::cache::ObjectMeta {
                headers: http::HeaderMap::new(),
                content_length: 0,
                etag: None,
                last_modified: None,
                stored_at: end,
                fresh_until: end,
            }),
            body: Bytes::new(),
        };
        assert!(within_stale_window(&object, Duration::from_secs(300)));
        assert!(!within_stale_window(&object, Duration::ZERO));
    }

    async fn call(cache: &mut Cache<Inner>, request: Request<ProxyBody>) -> (String, Bytes) {
        let response = cache.ready().await.unwrap().call(request).await.unwrap();
        let marker = response.headers()[X_CACHE].to_str().unwrap().to_owned();
        (
            marker,
            response.into_body().collect().await.unwrap().to_bytes(),
        )
    }

    #[tokio::test]
    async fn a_range_or_conditional_miss_goes_upstream_unchanged_and_is_not_stored() {
        let (mut cache, seen) = cache(StatusCode::PARTIAL_CONTENT, true);
        let (marker, _) = call(&mut cache, request(Method::GET, &[("range", "bytes=0-1")])).await;
        assert_eq!(marker, "MISS");
        assert_eq!(seen.lock().unwrap()[0].headers["range"], "bytes=0-1");
        let (marker, _) = call(
            &mut cache,
            request(Method::GET, &[("if-none-match", "\"x\"")]),
        )
        .await;
        assert_eq!(marker, "MISS");
        assert_eq!(seen.lock().unwrap()[1].headers["if-none-match"], "\"x\"");
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_head_miss_is_not_stored_and_a_get_fill_answers_later_heads() {
        let (mut cache, seen) = cache(StatusCode::OK, true);
        assert_eq!(call(&mut cache, request(Method::HEAD, &[])).await.0, "MISS");
        assert_eq!(call(&mut cache, request(Method::GET, &[])).await.0, "MISS");
        let (marker, body) = call(&mut cache, request(Method::HEAD, &[])).await;
        assert_eq!(marker, "HIT memory");
        assert!(body.is_empty());
        let (marker, body) = call(&mut cache, request(Method::GET, &[])).await;
        assert_eq!(marker, "HIT memory");
        assert_eq!(body, "hello");
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_response_without_length_or_not_200_is_not_stored() {
        for (status, with_length) in [(StatusCode::OK, false), (StatusCode::NO_CONTENT, true)] {
            let (mut cache, seen) = cache(status, with_length);
            for _ in 0..2 {
                assert_eq!(call(&mut cache, request(Method::GET, &[])).await.0, "MISS");
            }
            assert_eq!(seen.lock().unwrap().len(), 2, "{status} {with_length}");
        }
    }
}
