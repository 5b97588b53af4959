//! The cache layer's hit path and key hashing.
//!
//! - `cache/memory_hit_1k`: one GET answered from the memory tier *inside the
//!   cache layer* (a stub inner service stands for S3; it is called once to
//!   fill, never during the measurement): classification, key, lookup, the
//!   response with shared bytes and `X-Cache`, and consuming the 1 KiB body.
//!   Building the request (its key extension) is included, as the
//!   layers above would have done it. Target: ≤ 1 µs.
//! - `cache/key_digest`, `cache/key_hex`: the SHA-256 naming disk files and Redis keys.
//!
//! The hit completes without ever being pending, so it is polled once with a
//! no-op waker (`now_or_never`): no runtime overhead is measured.
//!
//! Run: `cargo bench --bench cache -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{HeaderValue, Request, Response, header};
use http_body_util::BodyExt;
use tower::{Layer, Service};
use yatagarasu::Config;
use yatagarasu::body::ProxyBody;
use yatagarasu::build::Staging;
use yatagarasu::cache::{CacheGeneration, CacheKey, CacheLayer};
use yatagarasu::error::ProxyError;
use yatagarasu::route::ObjectKey;
use yatagarasu::shared::Shared;
use yatagarasu::upstream::LeafService;

const CONFIG: &str = r#"
cache:
  enabled: true
buckets:
  - name: bench
    path_prefix: /bench
    s3: {bucket: bench-bucket, region: us-east-1, endpoint: "http://127.0.0.1:9", access_key: A, secret_key: S}
"#;

fn stub_s3() -> LeafService {
    let body = Bytes::from(vec![b'x'; 1024]);
    LeafService::new(tower::service_fn(move |_request: Request<ProxyBody>| {
        let body = body.clone();
        async move {
            let mut response = Response::new(yatagarasu::body::full(body));
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("1024"));
            response
                .headers_mut()
                .insert(header::ETAG, HeaderValue::from_static("\"e\""));
            Ok::<_, ProxyError>(response)
        }
    }))
}

fn request() -> Request<ProxyBody> {
    let mut request = Request::new(yatagarasu::body::empty());
    *request.uri_mut() = http::Uri::from_static("/bench/assets/logo.png");
    request
        .extensions_mut()
        .insert(ObjectKey("assets/logo.png".to_owned()));
    request
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let config = Config::from_yaml_str_with_env(CONFIG, &|_| None).expect("config");
    let shared = Shared::default();
    let mut staging = Staging::new(&shared);
    let generation = CacheGeneration::stage(&config, &shared.cache, &mut staging)
        .expect("cache")
        .expect("caching is enabled");
    staging.finish().commit(&shared);
    let layer = CacheLayer::for_bucket(&generation, &config.buckets[0]);
    let mut cache = layer.layer(stub_s3());
    // Fill.
    runtime.block_on(async {
        let response = cache.call(request()).await.expect("fill");
        response.into_body().collect().await.expect("body");
    });

    let mut group = c.benchmark_group("cache");
    group.bench_function("memory_hit_1k", |b| {
        b.iter(|| {
            let response = cache
                .call(request())
                .now_or_never()
                .expect("a hit is never pending")
                .expect("hit");
            debug_assert_eq!(response.headers()["x-cache"], "HIT memory");
            let body = response
                .into_body()
                .collect()
                .now_or_never()
                .expect("in memory")
                .expect("body");
            black_box(body);
        });
    });
    let key = CacheKey {
        bucket: Arc::from("bench"),
        backend: Default::default(),
        object: "assets/images/2024/logo-large.png".to_owned(),
        version_id: None,
    };
    group.bench_function("key_digest", |b| {
        b.iter(|| black_box(black_box(&key).digest()))
    });
    group.bench_function("key_hex", |b| b.iter(|| black_box(black_box(&key).hex())));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
