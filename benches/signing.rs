//! `sigv4::sign_request` cost for a typical ranged GET. Target: ≤ 5 µs.
//! `sign_get_range_same_second` is what the SigV4 layer pays when the same
//! object was already signed within the current second (`SignatureMemo`).
//!
//! Run: `cargo bench --bench signing -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

/// The allocator the `yatagarasu` binary ships with (`src/main.rs`), so the
/// numbers are those of the binary's request path (docs/PERFORMANCE.md has
/// signing measured with glibc's allocator too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, header};
use yatagarasu::backend::S3Backend;
use yatagarasu::config::{S3Config, S3Credentials, Secret, UpstreamConfig};
use yatagarasu::upstream::build_client;

fn backend() -> S3Backend {
    let client = build_client(&UpstreamConfig::default(), None).expect("client");
    let s3 = S3Config {
        bucket: "bench-bucket".into(),
        region: "eu-west-1".into(),
        endpoint: Some("http://127.0.0.1:9000".parse().expect("endpoint")),
        force_path_style: true,
        credentials: Some(S3Credentials {
            access_key: Secret::new("AKIDEXAMPLE"),
            secret_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        }),
        credential_source: None,
        ca_cert_path: None,
    };
    S3Backend::new(&s3, client).expect("backend")
}

/// What the S3 request layer hands to the signer: absolute URI, Host, Range.
fn request(backend: &S3Backend) -> Request<()> {
    let mut request = Request::get(
        backend
            .object_uri("images/photo.jpg", "")
            .expect("object uri"),
    )
    .body(())
    .expect("request");
    request
        .headers_mut()
        .insert(header::HOST, backend.host().clone());
    request
        .headers_mut()
        .insert(header::RANGE, "bytes=0-1023".parse().expect("range"));
    request
}

fn sign(c: &mut Criterion) {
    let backend = backend();
    let template = request(&backend);
    let time = SystemTime::now();

    // Sanity: the signer adds the authorization, date and payload-hash headers.
    let mut probe = template.clone();
    yatagarasu::sigv4::sign_request(&mut probe, &backend, time).expect("sign");
    for name in ["authorization", "x-amz-date", "x-amz-content-sha256"] {
        assert!(probe.headers().contains_key(name), "missing {name}");
    }

    let mut group = c.benchmark_group("sigv4");
    group.throughput(Throughput::Elements(1));
    // Includes cloning the request (a few header map entries); measured
    // separately below so it can be subtracted.
    group.bench_function("sign_get_range", |b| {
        b.iter_batched_ref(
            || template.clone(),
            |request| {
                yatagarasu::sigv4::sign_request(request, &backend, black_box(time)).expect("sign")
            },
            criterion::BatchSize::SmallInput,
        )
    });
    let memo = yatagarasu::sigv4::SignatureMemo::default();
    let mut first = template.clone();
    memo.sign(&mut first, &backend, time).expect("sign");
    assert_eq!(first.headers(), probe.headers());
    group.bench_function("sign_get_range_same_second", |b| {
        b.iter_batched_ref(
            || template.clone(),
            |request| {
                let signed = memo.sign(request, &backend, black_box(time)).expect("sign");
                assert_eq!(signed, yatagarasu::sigv4::Signed::Reused);
            },
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("clone_request_only", |b| {
        b.iter(|| black_box(template.clone()))
    });
    group.finish();
}

criterion_group!(benches, sign);
criterion_main!(benches);
