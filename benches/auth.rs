//! Authentication costs: token extraction, verification per algorithm family
//! (HS256 with 5 claim rules, RS256, ES256, EdDSA) and JWKS key lookup by kid.
//! Targets: HS256 + claims ≤ 2 µs, RS256 ≤ 25 µs, ES256 ≤ 60 µs. Each is
//! measured on a token's first sight (full verification) and for the same
//! token sent again (`_repeat_token`: the verified-token cache).
//!
//! Run: `cargo bench --bench auth -- --warm-up-time 1 --measurement-time 3`
//!
//! Verification runs with Yatagarasu's `jsonwebtoken` crypto provider (keys
//! parsed once, as in the binary); with `BENCH_STOCK_JWT_PROVIDER=1` it runs
//! with `jsonwebtoken`'s stock `aws_lc_rs` provider instead, for comparison.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

/// The allocator the `yatagarasu` binary ships with (`src/main.rs`), so the
/// numbers are those of the binary's request path (docs/PERFORMANCE.md has
/// signing measured with glibc's allocator too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Uri};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde_json::json;
use yatagarasu::auth::{JwtVerifier, KeySet, VerifyKey, find_token};
use yatagarasu::config::{ClaimOperator, ClaimRule, JwtConfig, KeySource, TokenSource};

const SECRET: &[u8] = b"bench-secret-0123456789abcdefghijkl";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture")
}

fn rule(claim: &str, operator: ClaimOperator) -> ClaimRule {
    ClaimRule {
        claim: claim.into(),
        path: claim.split('.').map(str::to_owned).collect(),
        operator,
    }
}

fn config(rules: Vec<ClaimRule>, token_cache_size: usize) -> JwtConfig {
    JwtConfig {
        keys: KeySource::Static(Vec::new()),
        issuer: Some("https://issuer.example/".into()),
        audience: vec!["yatagarasu".into()],
        leeway: Duration::from_secs(30),
        token_sources: vec![TokenSource::Bearer],
        claim_rules: rules,
        token_cache_size,
    }
}

fn token(alg: Algorithm, key: &EncodingKey) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = json!({
        "sub": "user-42", "iss": "https://issuer.example/", "aud": "yatagarasu",
        "iat": now, "exp": now + 3600,
        "role": "admin", "org": {"id": "acme"}, "groups": ["dev", "ops"], "level": 4,
        "email": "someone@example.com",
    });
    jsonwebtoken::encode(&Header::new(alg), &claims, key).expect("sign")
}

/// A verifier with one key; `token_cache_size` 0 verifies every call.
fn verifier(
    alg: Algorithm,
    key: DecodingKey,
    rules: Vec<ClaimRule>,
    token_cache_size: usize,
) -> JwtVerifier {
    let keys = KeySet::new(vec![VerifyKey {
        id: None,
        algorithm: alg,
        key,
    }]);
    JwtVerifier::with_keys(&config(rules, token_cache_size), Arc::new(keys))
}

/// The provider must be chosen before the first token is signed: the
/// benches sign their tokens first.
fn choose_provider() {
    if std::env::var_os("BENCH_STOCK_JWT_PROVIDER").is_none() {
        yatagarasu::auth::install_crypto_provider();
    }
}

fn bench_extraction(c: &mut Criterion) {
    choose_provider();
    let sources = vec![
        TokenSource::Header {
            name: http::HeaderName::from_static("x-auth-token"),
            prefix: Some("Token ".into()),
        },
        TokenSource::Query {
            name: "token".into(),
        },
        TokenSource::Cookie {
            name: "session".into(),
        },
        TokenSource::Bearer,
    ];
    let t = token(Algorithm::HS256, &EncodingKey::from_secret(SECRET));
    let mut headers = HeaderMap::new();
    headers.insert("accept", HeaderValue::from_static("*/*"));
    headers.insert("cookie", HeaderValue::from_static("theme=dark; lang=en"));
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {t}")).expect("header"),
    );
    let uri: Uri = "/private/docs/report.pdf?versionId=3".parse().expect("uri");
    c.bench_function("auth/extract_token_4_sources", |b| {
        b.iter(|| find_token(black_box(&sources), black_box(&headers), black_box(&uri)))
    });
}

fn bench_verify(c: &mut Criterion) {
    let rules = vec![
        rule("role", ClaimOperator::Equals(json!("admin"))),
        rule(
            "org.id",
            ClaimOperator::In(vec![json!("acme"), json!("initech")]),
        ),
        rule("groups", ClaimOperator::Contains(json!("ops"))),
        rule("level", ClaimOperator::Gte(3.0)),
        rule(
            "email",
            ClaimOperator::Regex(regex::Regex::new("@example\\.com$").expect("regex")),
        ),
    ];
    let hs = verifier(
        Algorithm::HS256,
        DecodingKey::from_secret(SECRET),
        rules.clone(),
        0,
    );
    let hs_cached = verifier(
        Algorithm::HS256,
        DecodingKey::from_secret(SECRET),
        rules,
        1000,
    );
    let hs_token = token(Algorithm::HS256, &EncodingKey::from_secret(SECRET));
    let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
    validation.set_audience(&["yatagarasu"]);
    let hs_key = DecodingKey::from_secret(SECRET);
    c.bench_function("auth/verify_hs256_jsonwebtoken_only", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(black_box(&hs_token), &hs_key, &validation)
                .expect("valid")
        })
    });
    c.bench_function("auth/verify_hs256_5_claim_rules", |b| {
        b.iter(|| {
            let verified = hs.verify(black_box(&hs_token)).expect("valid");
            assert!(verified.rules_hold && !verified.cached);
        })
    });
    // The same token again (a client's every request after its first):
    // answered by the verified-token cache.
    assert!(!hs_cached.verify(&hs_token).expect("valid").cached);
    c.bench_function("auth/verify_hs256_5_claim_rules_repeat_token", |b| {
        b.iter(|| {
            let verified = hs_cached.verify(black_box(&hs_token)).expect("valid");
            assert!(verified.rules_hold && verified.cached);
        })
    });

    let cases = [
        (
            "auth/verify_rs256",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).expect("key"),
            DecodingKey::from_rsa_pem(&fixture("rsa_public.pem")).expect("key"),
        ),
        (
            "auth/verify_es256",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(&fixture("ec256_private.pem")).expect("key"),
            DecodingKey::from_ec_pem(&fixture("ec256_public.pem")).expect("key"),
        ),
        (
            "auth/verify_eddsa",
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(&fixture("ed25519_private.pem")).expect("key"),
            DecodingKey::from_ed_pem(&fixture("ed25519_public.pem")).expect("key"),
        ),
    ];
    for (name, alg, signing, public) in cases {
        let t = token(alg, &signing);
        // The library alone, for comparison: what the crypto backend costs.
        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_audience(&["yatagarasu"]);
        validation.set_issuer(&["https://issuer.example/"]);
        c.bench_function(&format!("{name}_jsonwebtoken_only"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(black_box(&t), &public, &validation)
                    .expect("valid")
            })
        });
        let v = verifier(alg, public.clone(), Vec::new(), 0);
        c.bench_function(name, |b| b.iter(|| v.verify(black_box(&t)).expect("valid")));
        let cached = verifier(alg, public, Vec::new(), 1000);
        assert!(!cached.verify(&t).expect("valid").cached);
        c.bench_function(&format!("{name}_repeat_token"), |b| {
            b.iter(|| cached.verify(black_box(&t)).expect("valid"))
        });
    }
}

fn bench_jwks_lookup(c: &mut Criterion) {
    let signing = EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).expect("key");
    let keys = (0..16)
        .map(|i| {
            let mut jwk = Jwk::from_encoding_key(&signing, Algorithm::RS256).expect("jwk");
            jwk.common.key_id = Some(format!("key-{i:02}"));
            jwk
        })
        .collect();
    let set = KeySet::from_jwks(&JwkSet { keys }, None);
    c.bench_function("auth/jwks_select_by_kid_16_keys", |b| {
        b.iter(|| {
            set.select(black_box(Some("key-11")), Algorithm::RS256)
                .expect("known kid")
        })
    });
}

criterion_group!(benches, bench_extraction, bench_verify, bench_jwks_lookup);
criterion_main!(benches);
