//! Authorization decisions through `AuthzLayer` with the embedded Rego engine,
//! over an inner service that answers immediately.
//!
//! - `rego_decision/no_policy_baseline`: a bucket without a policy, so the
//!   layer passes the request straight on: the harness's own cost, to subtract.
//! - `rego_decision/cache_hit`: the same request again: cache key built from
//!   the input fields, decision cache hit, inner call. Target: ≤ 300 ns.
//! - `rego_decision/cache_miss`: a new object key every time: cache key
//!   built, input serialised to JSON, policy evaluated by regorus, decision
//!   cached, inner call.
//! - `rego_parts/*`: the pieces: building the cache key, serialising the
//!   input document, a decision cache lookup that hits, evaluating
//!   the compiled policy (the shared `CompiledPolicy` starts a fresh
//!   interpreter per evaluation), and for comparison the alternative of
//!   cloning a loaded `regorus::Engine` per evaluation.
//!
//! The production Prometheus recorder is installed, so counters cost what
//! they cost in the binary. Requests are built outside the measured part.
//!
//! Run: `cargo bench --bench authz -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use futures_util::FutureExt;
use http::{HeaderMap, Request, Response};
use tower::{Layer, Service};
use yatagarasu::access_log::ClientAddr;
use yatagarasu::auth::VerifiedClaims;
use yatagarasu::authz::{AuthzLayer, DecisionCache, InputDocument, PolicyHeaders, RegoPolicy};
use yatagarasu::body::{ProxyBody, empty};
use yatagarasu::config::Config;
use yatagarasu::error::ProxyError;
use yatagarasu::limits::SafePath;
use yatagarasu::route::ObjectKey;
use yatagarasu::shared::Shared;
use yatagarasu::upstream::build_client;

const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/policies/s3.rego"
);

fn config() -> Config {
    Config::from_yaml_str(&format!(
        "buckets:\n  - name: bench\n    path_prefix: /bench\n    s3: {{bucket: bench-bucket, \
         region: us-east-1, endpoint: 'http://127.0.0.1:1', anonymous: true}}\n    auth:\n      \
         authorization:\n        type: rego\n        policy_path: {POLICY:?}\n        \
         decision_cache_max_entries: 100000\n"
    ))
    .unwrap()
}

fn claims() -> VerifiedClaims {
    let serde_json::Value::Object(map) = serde_json::json!({
        "sub": "alice", "role": "reader", "iss": "https://issuer/", "aud": "yatagarasu",
        "exp": 2_000_000_000u64, "iat": 1_700_000_000u64, "org": {"id": "acme"},
    }) else {
        unreachable!()
    };
    VerifiedClaims {
        subject: Some("alice".into()),
        key_id: None,
        claims: Arc::new(map),
        payload: Some("eyJzdWIiOiJhbGljZSIsInJvbGUiOiJyZWFkZXIiLCJpc3MiOiJodHRwczovL2lzc3Vlci8iLCJhdWQiOiJ5YXRhZ2FyYXN1IiwiZXhwIjoyMDAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDAsIm9yZyI6eyJpZCI6ImFjbWUifX0".into()),
    }
}

fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", "cdn.example.com".parse().unwrap());
    h.insert(
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64)".parse().unwrap(),
    );
    h.insert("accept", "*/*".parse().unwrap());
    h.insert("accept-encoding", "gzip, br".parse().unwrap());
    h.insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
    h.insert(
        "authorization",
        "Bearer eyJhbGciOi.not.a.real.token".parse().unwrap(),
    );
    h
}

fn bench_authz(c: &mut Criterion) {
    let _ = yatagarasu::telemetry::metrics::install_prometheus();
    let config = config();
    let shared = Shared::default();
    let client = build_client(&config.upstream, None).unwrap();
    let layer = AuthzLayer::for_bucket(
        &config.buckets[0],
        &shared.authz,
        &mut || Ok(client.clone()),
        "buckets[0]",
    )
    .unwrap()
    .expect("the bucket has a policy");
    let stub = tower::service_fn(|_r: Request<ProxyBody>| {
        std::future::ready(Ok::<_, ProxyError>(Response::new(empty())))
    });
    let mut service = layer.layer(stub);
    // A bucket without a policy has no authorization layer at all: what the
    // harness costs around the layer.
    let mut unguarded = stub;
    let claims = claims();
    let headers = headers();
    let request = |key: String| {
        let path = format!("/bench/{key}");
        let mut r = Request::get(&path).body(empty()).unwrap();
        *r.headers_mut() = headers.clone();
        let ext = r.extensions_mut();
        ext.insert(ObjectKey(key));
        ext.insert(SafePath(path));
        ext.insert(ClientAddr(SocketAddr::from(([192, 0, 2, 1], 50000))));
        ext.insert(claims.clone());
        r
    };
    let mut call = |r: Request<ProxyBody>| {
        let response = service.call(r).now_or_never().unwrap().unwrap();
        assert_eq!(response.status(), 200);
        response
    };
    let mut call_unguarded = |r: Request<ProxyBody>| {
        let response = unguarded.call(r).now_or_never().unwrap().unwrap();
        assert_eq!(response.status(), 200);
        response
    };

    let mut group = c.benchmark_group("rego_decision");
    group.bench_function("no_policy_baseline", |b| {
        b.iter_batched(
            || request("docs/report.pdf".to_owned()),
            &mut call_unguarded,
            BatchSize::SmallInput,
        )
    });
    group.bench_function("cache_hit", |b| {
        b.iter_batched(
            || request("docs/report.pdf".to_owned()),
            &mut call,
            BatchSize::SmallInput,
        )
    });
    let mut n = 0u64;
    group.bench_function("cache_miss", |b| {
        b.iter_batched(
            || {
                n += 1;
                request(format!("docs/{n}.pdf"))
            },
            &mut call,
            BatchSize::SmallInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("rego_parts");
    let document = InputDocument {
        method: "GET",
        path: "/bench/docs/report.pdf",
        bucket: "bench",
        key: "docs/report.pdf",
        claims: Some(&claims.claims),
        claims_payload: claims.payload.as_deref(),
        client_ip: Some("192.0.2.1".parse().unwrap()),
        headers: PolicyHeaders {
            headers: &headers,
            hidden: &[],
        },
    };
    group.bench_function("input_cache_key", |b| {
        b.iter(|| black_box(&document).cache_key())
    });
    group.bench_function("input_to_json", |b| {
        b.iter(|| black_box(&document).to_json())
    });
    let json = document.to_json();
    let key = document.cache_key().unwrap();
    let cache = DecisionCache::new(
        100_000,
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(10),
    );
    cache.insert(&key, true);
    group.bench_function("decision_cache_get_hit", |b| {
        b.iter(|| assert_eq!(cache.get(black_box(&key)), Some(true)))
    });
    group.bench_function("cache_key_and_get_hit", |b| {
        b.iter(|| {
            let key = black_box(&document).cache_key().unwrap();
            assert_eq!(cache.get(&key), Some(true))
        })
    });
    let policy = RegoPolicy::load(POLICY.as_ref(), "data.yatagarasu.allow").unwrap();
    group.bench_function("compiled_policy_eval", |b| {
        b.iter(|| assert!(policy.evaluate(black_box(&json)).unwrap()))
    });
    let mut engine = regorus::Engine::new();
    engine.add_policy_from_file(POLICY).unwrap();
    let input = regorus::Value::from_json_str(std::str::from_utf8(&json).unwrap()).unwrap();
    group.bench_function("engine_clone_eval", |b| {
        b.iter(|| {
            let mut e = engine.clone();
            e.set_input(input.clone());
            assert_eq!(
                e.eval_rule("data.yatagarasu.allow".into()).unwrap(),
                regorus::Value::from(true)
            );
        })
    });
    group.finish();
}

criterion_group!(benches, bench_authz);
criterion_main!(benches);
