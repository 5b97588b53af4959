//! Serving from a cached object: range parsing and slicing, multipart
//! assembly (chunks sharing the cached bytes vs one copied buffer) and
//! conditional evaluation.
//!
//! Run: `cargo bench --bench cache_serve -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt as _;
use http::{HeaderMap, HeaderValue, Method, header};
use http_body_util::BodyExt as _;
use yatagarasu::body::ProxyBody;
use yatagarasu::cache::serve::multipart::{Multipart, new_boundary};
use yatagarasu::cache::serve::range::{self, ByteRange};
use yatagarasu::cache::serve::{conditional, respond};
use yatagarasu::cache::{CachedObject, ObjectMeta};

const MIB: usize = 1 << 20;

fn object(len: usize) -> CachedObject {
    let stored_at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(
        header::ETAG,
        HeaderValue::from_static("\"9b2cf535f27731c974343645a3985328\""),
    );
    headers.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_str(&httpdate::fmt_http_date(stored_at)).unwrap(),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    CachedObject {
        meta: Arc::new(ObjectMeta {
            headers,
            content_length: len as u64,
            etag: Some("\"9b2cf535f27731c974343645a3985328\"".to_owned()),
            last_modified: Some(stored_at),
            stored_at,
            fresh_until: stored_at + Duration::from_secs(3600),
        }),
        body: Bytes::from(vec![7u8; len]),
    }
}

fn request(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.append(*name, HeaderValue::from_str(value).unwrap());
    }
    headers
}

/// Polls every frame of an in-memory body, returning the byte count.
fn drain(body: ProxyBody) -> usize {
    let mut body = body;
    let mut total = 0;
    while let Some(Some(frame)) = body.frame().now_or_never() {
        total += frame.unwrap().into_data().map_or(0, |d| d.len());
    }
    total
}

fn ranges(c: &mut Criterion) {
    let object = object(MIB);
    let now = object.meta.stored_at + Duration::from_secs(5);
    let mut group = c.benchmark_group("cache_serve_range");
    group.bench_function("parse_single", |b| {
        b.iter(|| range::parse(black_box("bytes=1000-1999"), black_box(MIB as u64)))
    });
    group.bench_function("parse_three", |b| {
        b.iter(|| {
            range::parse(
                black_box("bytes=0-99,5000-5999,-100"),
                black_box(MIB as u64),
            )
        })
    });
    for (name, pairs) in [
        ("full_get", vec![]),
        ("single_range_1KiB", vec![("range", "bytes=1000-1999")]),
        ("suffix_range_64KiB", vec![("range", "bytes=-65536")]),
    ] {
        let headers = request(&pairs);
        group.bench_function(BenchmarkId::new("respond", name), |b| {
            b.iter(|| respond(&object, &Method::GET, black_box(&headers), now).map(|r| r.status()))
        });
    }
    group.finish();
}

fn multipart(c: &mut Criterion) {
    let mut group = c.benchmark_group("cache_serve_multipart");
    let object = object(MIB);
    let third = (MIB / 3) as u64;
    let cases = [
        (
            "3x100B",
            [
                (0, 99),
                (third, third + 99),
                (MIB as u64 - 100, MIB as u64 - 1),
            ],
        ),
        (
            "3x4KiB",
            [
                (0, 4095),
                (third, third + 4095),
                (MIB as u64 - 4096, MIB as u64 - 1),
            ],
        ),
        (
            "3x341KiB",
            [
                (0, third - 1),
                (third, 2 * third - 1),
                (2 * third, MIB as u64 - 1),
            ],
        ),
    ];
    for (name, spans) in cases {
        let spans: Vec<ByteRange> = spans
            .iter()
            .map(|&(first, last)| ByteRange { first, last })
            .collect();
        let content_type = object.meta.headers.get(header::CONTENT_TYPE);
        group.bench_function(BenchmarkId::new("chunks", name), |b| {
            b.iter(|| {
                let parts = Multipart::new(&object.body, &spans, content_type, new_boundary());
                drain(yatagarasu::body::boxed(parts.into_chunks()))
            })
        });
        group.bench_function(BenchmarkId::new("one_buffer", name), |b| {
            b.iter(|| {
                let parts = Multipart::new(&object.body, &spans, content_type, new_boundary());
                drain(yatagarasu::body::full(parts.into_contiguous()))
            })
        });
    }
    let now = object.meta.stored_at;
    let headers = request(&[("range", "bytes=0-99999,400000-499999,-100000")]);
    group.bench_function("respond_3_ranges_of_1MiB", |b| {
        b.iter(|| {
            let response = respond(&object, &Method::GET, black_box(&headers), now).unwrap();
            drain(response.into_body())
        })
    });
    group.finish();
}

fn conditionals(c: &mut Criterion) {
    let object = object(1024);
    let modified = httpdate::fmt_http_date(object.meta.stored_at);
    let mut group = c.benchmark_group("cache_serve_conditional");
    for (name, pairs) in [
        ("none", vec![]),
        (
            "if_none_match_hit",
            vec![("if-none-match", "\"9b2cf535f27731c974343645a3985328\"")],
        ),
        (
            "if_none_match_list_miss",
            vec![("if-none-match", "\"a\", W/\"b\", \"c\", \"d\"")],
        ),
        (
            "if_modified_since",
            vec![("if-modified-since", modified.as_str())],
        ),
        ("if_match_star", vec![("if-match", "*")]),
    ] {
        let headers = request(&pairs);
        group.bench_function(BenchmarkId::new("evaluate", name), |b| {
            b.iter(|| conditional::evaluate(&Method::GET, black_box(&headers), &object.meta))
        });
    }
    let now = object.meta.stored_at;
    let headers = request(&[("if-none-match", "\"9b2cf535f27731c974343645a3985328\"")]);
    group.bench_function("respond_304", |b| {
        b.iter(|| respond(&object, &Method::GET, black_box(&headers), now).map(|r| r.status()))
    });
    group.finish();
}

criterion_group!(benches, ranges, multipart, conditionals);
criterion_main!(benches);
