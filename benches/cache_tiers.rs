//! Disk and codec costs of the slower cache tiers.
//!
//! - `codec/encode` and `codec/decode` (SHA-256 over the whole entry) for
//!   4 KiB and 1 MiB bodies;
//! - `disk_hit`: a `DiskTier::get` hit (index lookup, file read on the
//!   blocking pool, checksum, decode) for 4 KiB and 1 MiB bodies, with the
//!   file in the page cache;
//! - `disk_index_rebuild/10000`: opening a tier over 10,000 entry files
//!   (target ≤ 1 s; warm page cache).
//!
//! Run: `cargo bench --bench cache_tiers -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue};
use yatagarasu::cache::codec;
use yatagarasu::cache::disk::DiskTier;
use yatagarasu::cache::{CacheKey, CacheTier, CachedObject, ObjectMeta};
use yatagarasu::config::DiskCacheConfig;

const SIZES: [(&str, usize); 2] = [("4KiB", 4 << 10), ("1MiB", 1 << 20)];

fn key(object: &str) -> CacheKey {
    CacheKey {
        bucket: Arc::from("products"),
        backend: Default::default(),
        object: object.to_owned(),
        version_id: None,
    }
}

fn object(len: usize) -> CachedObject {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("image/png"));
    headers.insert("etag", HeaderValue::from_static("\"0123456789abcdef\""));
    headers.insert(
        "last-modified",
        HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
    );
    headers.insert(
        "cache-control",
        HeaderValue::from_static("public, max-age=600"),
    );
    headers.insert("x-amz-meta-owner", HeaderValue::from_static("bench"));
    let body: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    CachedObject {
        meta: Arc::new(ObjectMeta {
            headers,
            content_length: len as u64,
            etag: Some("\"0123456789abcdef\"".to_owned()),
            last_modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480)),
            stored_at: SystemTime::now(),
            fresh_until: SystemTime::now() + Duration::from_secs(86_400),
        }),
        body: Bytes::from(body),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn codec_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    for (name, len) in SIZES {
        let k = key("img/logo.png");
        let obj = object(len);
        let encoded = Bytes::from(codec::encode(&k, &obj));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("encode", name), &obj, |b, obj| {
            b.iter(|| black_box(codec::encode(&k, obj)))
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &encoded, |b, bytes| {
            b.iter(|| black_box(codec::decode(bytes.clone()).expect("valid entry")))
        });
    }
    group.finish();
}

fn disk_hit(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DiskCacheConfig {
        cache_dir: dir.path().to_path_buf(),
        max_size: 1 << 30,
    };
    let tier = rt
        .block_on(DiskTier::open(&config, Duration::from_secs(300)))
        .expect("open");
    let mut group = c.benchmark_group("disk_hit");
    for (name, len) in SIZES {
        let k = key(name);
        rt.block_on(tier.put(&k, object(len))).expect("put");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let hit = rt.block_on(tier.get(&k)).expect("get");
                black_box(hit.expect("a hit"))
            })
        });
    }
    group.finish();
}

fn index_rebuild(c: &mut Criterion) {
    const ENTRIES: usize = 10_000;
    let rt = runtime();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = DiskCacheConfig {
        cache_dir: dir.path().to_path_buf(),
        max_size: 1 << 40,
    };
    let tier = rt
        .block_on(DiskTier::open(&config, Duration::from_secs(300)))
        .expect("open");
    let body = object(1024);
    rt.block_on(async {
        for i in 0..ENTRIES {
            tier.put(&key(&format!("assets/file-{i}.css")), body.clone())
                .await
                .expect("put");
        }
    });
    drop(tier);
    let mut group = c.benchmark_group("disk_index_rebuild");
    group.sample_size(10);
    group.bench_function(BenchmarkId::from_parameter(ENTRIES), |b| {
        b.iter(|| {
            let tier = DiskTier::open_blocking(&config, Duration::from_secs(300)).expect("open");
            assert_eq!(tier.stats().items, ENTRIES as u64);
            black_box(tier)
        })
    });
    group.finish();
}

criterion_group!(benches, codec_bench, disk_hit, index_rebuild);
criterion_main!(benches);
