//! The cache service: a fresh hit answered inline, a bypass passed down,
//! and the dispatch to a miss (`miss.rs`) or a revalidation
//! (`revalidate.rs`); the `X-Cache` marker.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use futures_util::future::{Either, Ready, ready};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, header};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

use super::key::BackendId;
use super::miss::miss;
use super::policy::StoragePolicy;
use super::range_miss::single_range_only;
use super::revalidate::revalidate;
use super::stats::{BucketCounters, Outcome};
use super::store::Store;
use super::{CacheKey, CachedObject};
use crate::body::ProxyBody;
use crate::config::CacheTierKind;
use crate::error::ProxyError;
use crate::headers::CONDITIONAL;
use crate::query::ForwardedQuery;
use crate::route::{BucketService, ObjectKey};
use crate::telemetry::otel::phase::{Phase, PhaseTimer};
use crate::telemetry::otel::{SPAN_TARGET, bucket_of};

/// `X-Cache`: what the cache did.
pub const X_CACHE: http::HeaderName = http::HeaderName::from_static("x-cache");

/// The `Warning` sent with a stale answer (RFC 7234 §5.5.1).
const STALE_WARNING: &str = "110 - \"Response is Stale\"";

/// One bucket's cache settings in this configuration generation.
#[derive(Debug)]
pub(crate) struct BucketPolicy {
    /// The bucket's name, part of every key.
    pub(crate) name: Arc<str>,
    /// `false`: the bucket opted out; its answers are marked `BYPASS`.
    pub(crate) enabled: bool,
    /// TTL and item limit of this bucket's entries.
    pub(crate) storage: StoragePolicy,
    pub(crate) counters: Arc<BucketCounters>,
    /// The S3 backend the bucket name stands for, part of every key.
    pub(crate) backend: BackendId,
    /// Slice size for objects over the item limit; 0: not sliced.
    pub(crate) slice_size: u64,
}

/// What every cached request of one generation needs, whatever its bucket.
#[derive(Debug)]
pub(crate) struct CacheContext {
    pub(crate) store: Arc<Store>,
    pub(crate) stale_if_error: Duration,
    /// Longest wait for a coalesced fetch before fetching alone.
    pub(crate) coalesce_wait: Duration,
}

/// The service made by [`super::CacheLayer`].
#[derive(Debug, Clone)]
pub struct Cache<S> {
    pub(super) inner: S,
    pub(super) context: Arc<CacheContext>,
    pub(super) bucket: Arc<BucketPolicy>,
}

/// The inner stack, type-erased so the request futures are not generic.
pub(super) type Inner = BoxCloneSyncService<Request<ProxyBody>, Response<ProxyBody>, ProxyError>;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send>>;

impl<S: BucketService> Service<Request<ProxyBody>> for Cache<S> {
    type Response = Response<ProxyBody>;
    type Error = ProxyError;
    type Future =
        Either<S::Future, Either<Ready<Result<Response<ProxyBody>, ProxyError>>, BoxFuture>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ProxyBody>) -> Self::Future {
        let context = &self.context;
        // Parsed once: the key, the bypass and the S3 request all read this form.
        ForwardedQuery::remember(&mut request);
        // A child span of the request and the slow log's `cache_ms` (when on).
        let phase = PhaseTimer::start(
            Phase::Cache,
            &request,
            || tracing::info_span!(target: SPAN_TARGET, "cache.lookup", bucket = bucket_of(&request), tier = "memory"),
        );
        // The hot path: fresh in the memory tier (looked up first) is
        // answered here, with no task, no boxed future and no inner clone.
        if let Ok(target) = classify(&self.bucket, &request)
            && let Some(object) = phase.in_scope(|| context.store.fresh_memory_hit(&target.key))
        {
            target.policy.counters.record(Outcome::Hit);
            let (parts, _) = request.into_parts();
            let answer = serve(&parts, &object, Marker::Hit(CacheTierKind::Memory));
            return Either::Right(Either::Left(ready(answer)));
        }
        drop(phase);
        // The service polled ready is the one used first (tower's clone idiom).
        let clone = self.inner.clone();
        let inner = Inner::new(std::mem::replace(&mut self.inner, clone));
        Either::Right(Either::Right(Box::pin(handle(
            context.clone(),
            self.bucket.clone(),
            inner,
            request,
        ))))
    }
}

/// Where a cacheable request is looked up.
pub(super) struct Target<'a> {
    pub(super) policy: &'a BucketPolicy,
    pub(super) key: CacheKey,
}

/// Where the request is looked up, or `Err` when it bypasses the cache.
fn classify<'a>(policy: &'a BucketPolicy, request: &Request<ProxyBody>) -> Result<Target<'a>, ()> {
    let object = request.extensions().get::<ObjectKey>().ok_or(())?;
    let method = request.method();
    if !policy.enabled || (method != Method::GET && method != Method::HEAD) {
        return Err(());
    }
    // Judged on the decoded parameters S3 will receive, never the raw query.
    let forwarded = ForwardedQuery::of(request);
    // These change the answer (a part, overridden headers): never cached.
    // A NUL in the version is never S3's, and marks the cache's own slice
    // entries (`slice/keys.rs`): such a request must not find them.
    if forwarded.alters_answer() || forwarded.version_id().is_some_and(|v| v.contains('\0')) {
        return Err(());
    }
    Ok(Target {
        policy,
        key: CacheKey {
            bucket: policy.name.clone(),
            backend: policy.backend,
            object: object.0.clone(),
            version_id: forwarded.version_id().map(str::to_owned),
        },
    })
}

async fn handle(
    context: Arc<CacheContext>,
    bucket: Arc<BucketPolicy>,
    inner: Inner,
    request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, ProxyError> {
    let Ok(target) = classify(&bucket, &request) else {
        bucket.counters.record(Outcome::Bypass);
        let response = forward(inner, single_range_only(request)).await?;
        return Ok(mark(response, Marker::Bypass));
    };
    let store = &context.store;
    // A range of an object known (in memory) to be sliced: no tier holds
    // it whole, so the slower tiers are not asked for it.
    let sliced = target.policy.slice_size > 0
        && request.headers().contains_key(header::RANGE)
        && super::slice::known_large(store, &target.key, target.policy.storage.max_item_size);
    let found = if sliced {
        None
    } else {
        let phase = PhaseTimer::start(
            Phase::Cache,
            &request,
            || tracing::info_span!(target: SPAN_TARGET, "cache.lookup", bucket = &*bucket.name, tier = "all"),
        );
        phase.wrap(store.lookup(&target.key)).await
    };
    match found {
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
pub(super) fn forward(inner: Inner, request: Request<ProxyBody>) -> BoxFuture {
    Box::pin(inner.oneshot(request))
}

pub(super) fn is_fresh(object: &CachedObject) -> bool {
    SystemTime::now() < object.meta.fresh_until
}

pub(super) fn is_plain(headers: &HeaderMap) -> bool {
    !CONDITIONAL.iter().any(|name| headers.contains_key(name))
}

/// What `X-Cache` says.
#[derive(Debug, Clone, Copy)]
pub(super) enum Marker {
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

pub(super) fn mark(mut response: Response<ProxyBody>, marker: Marker) -> Response<ProxyBody> {
    response.headers_mut().insert(X_CACHE, marker.value());
    if matches!(marker, Marker::Stale) {
        response
            .headers_mut()
            .insert(header::WARNING, HeaderValue::from_static(STALE_WARNING));
    }
    response
}

/// Answers the request from `object`.
pub(super) fn serve(
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

    use http::StatusCode;

    use super::*;
    use crate::body::{empty, full};
    use crate::build::Staging;
    use crate::cache::{CacheGeneration, CacheLayer};
    use crate::config::Config;
    use crate::error::ProxyError;
    use crate::shared::Shared;

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
        let (config, shared) = (config(), Shared::default());
        let mut staging = Staging::new(&shared);
        let generation = CacheGeneration::stage(&config, &shared.cache, &mut staging)
            .unwrap()
            .unwrap();
        staging.finish().commit(&shared);
        let layer = CacheLayer::for_bucket(&generation, &config.buckets[0]);
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
        request.extensions_mut().insert(ObjectKey("key.txt".into()));
        request
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
    async fn a_range_miss_fetches_the_whole_object_once_and_answers_from_it() {
        let (mut cache, seen) = cache(StatusCode::OK, true);
        let (marker, body) =
            call(&mut cache, request(Method::GET, &[("range", "bytes=1-2")])).await;
        assert_eq!((marker.as_str(), body.as_ref()), ("MISS", &b"el"[..]));
        assert!(!seen.lock().unwrap()[0].headers.contains_key("range"));
        // Stored: later ranges, multi-ranges and full GETs are hits.
        let (marker, body) = call(&mut cache, request(Method::GET, &[("range", "bytes=-2")])).await;
        assert_eq!((marker.as_str(), body.as_ref()), ("HIT memory", &b"lo"[..]));
        let (marker, body) = call(&mut cache, request(Method::GET, &[])).await;
        assert_eq!(
            (marker.as_str(), body.as_ref()),
            ("HIT memory", &b"hello"[..])
        );
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_conditional_miss_goes_upstream_without_several_ranges() {
        let (mut cache, seen) = cache(StatusCode::OK, true);
        let (marker, _) = call(
            &mut cache,
            request(
                Method::GET,
                &[("if-none-match", "\"x\""), ("range", "bytes=0-1")],
            ),
        )
        .await;
        assert_eq!(marker, "MISS");
        assert_eq!(seen.lock().unwrap()[0].headers["if-none-match"], "\"x\"");
        assert_eq!(seen.lock().unwrap()[0].headers["range"], "bytes=0-1");
        let (marker, _) = call(
            &mut cache,
            request(
                Method::GET,
                &[("if-none-match", "\"x\""), ("range", "bytes=0-1,3-4")],
            ),
        )
        .await;
        assert_eq!(marker, "MISS");
        assert!(!seen.lock().unwrap()[1].headers.contains_key("range"));
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_multi_range_miss_is_answered_by_the_proxy_as_multipart() {
        let (mut cache, seen) = cache(StatusCode::OK, true);
        let response = cache
            .ready()
            .await
            .unwrap()
            .call(request(Method::GET, &[("range", "bytes=0-0,4-4")]))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(response.headers()[header::ACCEPT_RANGES], "bytes");
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(content_type.starts_with("multipart/byteranges; boundary="));
        let length: usize = response.headers()[header::CONTENT_LENGTH]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body.len(), length);
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("Content-Range: bytes 0-0/5\r\n\r\nh\r\n"),
            "{text}"
        );
        assert!(
            text.contains("Content-Range: bytes 4-4/5\r\n\r\no\r\n"),
            "{text}"
        );
        assert!(!seen.lock().unwrap()[0].headers.contains_key("range"));
    }

    #[tokio::test]
    async fn an_if_range_that_does_not_match_gets_the_whole_object() {
        let (mut cache, _) = cache(StatusCode::OK, true);
        let headers = [("range", "bytes=1-2"), ("if-range", "\"other\"")];
        let (marker, body) = call(&mut cache, request(Method::GET, &headers)).await;
        assert_eq!((marker.as_str(), body.as_ref()), ("MISS", &b"hello"[..]));
    }

    #[tokio::test]
    async fn a_range_miss_on_an_uncacheable_answer_asks_s3_for_the_range() {
        let (mut cache, seen) = cache(StatusCode::OK, false);
        let (marker, _) = call(&mut cache, request(Method::GET, &[("range", "bytes=1-2")])).await;
        assert_eq!(marker, "MISS");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2, "the whole object, then the range");
        assert!(!seen[0].headers.contains_key("range"));
        assert_eq!(seen[1].headers["range"], "bytes=1-2");
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
