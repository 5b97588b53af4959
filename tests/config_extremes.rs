//! Every numeric setting at extreme values: either validation refuses the
//! value with an error at the key's own path, or the proxy is built with it
//! and serves a GET (auth, Rego/OPA/OpenFGA authorization, the three cache
//! tiers, signing and the pooled client all on the way) without a panic.
//!
//! Values: 0, 1, 2^31, 2^31 + 1, 2^32, 2^53, 2^63, u64::MAX, then random
//! ones (proptest). Validation goes through the library
//! (`Config::from_yaml_str_with_env`), serving through an in-process
//! `yatagarasu::Proxy` in front of a real s3s-fs server: starting the binary
//! for every case would take minutes. The listener's own settings (`server.*`)
//! are served by the binary instead, once, all at their largest accepted
//! value ([`server_settings_at_their_largest_values_serve`]).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use common::{ACCESS_KEY, S3Server, SECRET_KEY, q};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use jsonwebtoken::{EncodingKey, Header};
use proptest::prelude::*;
use serde_json::json;
use tower::ServiceExt;
use yatagarasu::access_log::ClientAddr;
use yatagarasu::{Config, Proxy};

/// Every numeric key, with the value the base configuration gives it.
///
/// The base configuration ([`TEMPLATE`]) holds each key once, as `«key»`.
const FIELDS: &[(&str, u64)] = &[
    ("server.port", 0),
    ("server.request_timeout_seconds", 30),
    ("server.graceful_shutdown_timeout_seconds", 30),
    ("server.shutdown_delay_seconds", 0),
    ("server.header_read_timeout_seconds", 10),
    ("server.readiness_probe_interval_seconds", 10),
    ("server.max_connections", 10_000),
    ("server.idle_timeout_seconds", 60),
    ("server.http2_max_concurrent_streams", 100),
    ("server.max_header_bytes", 65_536),
    ("server.worker_threads", 2),
    ("server.max_concurrent_requests", 10_000),
    ("server.security_limits.max_uri_length", 8192),
    ("server.security_limits.max_header_size", 16_384),
    ("server.security_limits.max_body_size", 0),
    ("server.security_limits.max_headers", 100),
    ("server.rate_limit.global.requests_per_second", 1000),
    ("server.rate_limit.global.burst", 1000),
    ("server.rate_limit.per_ip.requests_per_second", 1000),
    ("server.rate_limit.per_ip.burst", 1000),
    ("server.rate_limit.per_ip.max_tracked_ips", 100_000),
    ("admin.jwt.leeway_seconds", 0),
    ("metrics.port", 0),
    ("upstream.pool_max_idle_per_host", 64),
    ("upstream.pool_idle_timeout_seconds", 90),
    ("upstream.connect_timeout_seconds", 5),
    ("upstream.read_buffer_bytes", 98_304),
    ("upstream.max_connections_per_bucket", 0),
    ("upstream.connection_wait_ms", 200),
    ("jwt.leeway_seconds", 0),
    ("jwt.token_cache_size", 1000),
    ("cache.stale_if_error_seconds", 300),
    ("cache.slice_size_mb", 1),
    ("cache.memory.max_item_size_mb", 1),
    ("cache.memory.max_cache_size_mb", 1024),
    ("cache.memory.default_ttl_seconds", 3600),
    ("cache.disk.max_disk_cache_size_mb", 2048),
    ("cache.redis.redis_db", 0),
    ("cache.redis.ttl_seconds", 3600),
    ("cache.redis.pool_size", 16),
    ("cache.redis.timeout_ms", 200),
    ("buckets[0].s3.circuit_breaker.failure_threshold", 5),
    ("buckets[0].s3.circuit_breaker.success_threshold", 2),
    ("buckets[0].s3.circuit_breaker.timeout_seconds", 60),
    ("buckets[0].s3.circuit_breaker.half_open_max_requests", 3),
    ("buckets[0].s3.retry.max_attempts", 3),
    ("buckets[0].s3.retry.initial_backoff_ms", 1),
    ("buckets[0].s3.retry.max_backoff_ms", 1000),
    ("buckets[0].s3.retry.budget_percent", 10),
    ("buckets[0].cache.ttl_seconds", 60),
    ("buckets[0].cache.max_item_size_mb", 1),
    ("buckets[0].s3.rate_limit.requests_per_second", 1000),
    ("buckets[0].s3.rate_limit.burst", 1000),
    ("buckets[0].rate_limit_per_user.requests_per_second", 1000),
    ("buckets[0].rate_limit_per_user.burst", 1000),
    (
        "buckets[0].auth.authorization.decision_cache_ttl_seconds",
        60,
    ),
    (
        "buckets[0].auth.authorization.negative_decision_cache_ttl_seconds",
        10,
    ),
    (
        "buckets[0].auth.authorization.decision_cache_max_entries",
        10_000,
    ),
    ("buckets[1].auth.authorization.timeout_ms", 200),
    ("buckets[2].auth.authorization.timeout_ms", 200),
    ("buckets[3].auth.jwt.jwks_refresh_interval_seconds", 3600),
    ("buckets[3].auth.jwt.jwks_min_refresh_interval_seconds", 60),
    ("buckets[3].auth.jwt.jwks_timeout_seconds", 5),
    ("buckets[4].s3.replicas[0].priority", 1),
    ("buckets[4].s3.replicas[0].timeout", 5),
    ("cors.max_age_seconds", 600),
    ("buckets[4].cors.max_age_seconds", 600),
    ("audit_log.file.max_file_size_mb", 50),
    ("audit_log.file.max_backup_files", 5),
    ("audit_log.file.buffer_size", 10_000),
    ("observability.slow_query.threshold_ms", 1000),
    ("observability.request_logging.max_body_size", 1024),
];

/// The fixed extremes every key is tried with.
const EXTREMES: &[u64] = &[
    0,
    1,
    1 << 31,
    (1 << 31) + 1,
    1 << 32,
    1 << 53,
    1 << 63,
    u64::MAX,
];

const JWT_SECRET: &str = "config-extremes-jwt-secret-0123456789";

/// Every feature with a numeric key, so one GET per bucket goes through all of them.
///
/// - `a`: JWT (top level) + Rego + cache overrides + S3 XML errors + a
///   website (SPA fallback); expects 200.
/// - `b`: OPA, unreachable, `fail: open`, JSON errors; expects 200.
/// - `c`: JWT + OpenFGA, unreachable, `fail: open`; expects 200.
/// - `d`: JWKS, unreachable; any answer but a 500.
/// - `e`: one replica and a 404 fallback; expects 200.
const TEMPLATE: &str = r#"
server:
  port: «server.port»
  request_timeout_seconds: «server.request_timeout_seconds»
  graceful_shutdown_timeout_seconds: «server.graceful_shutdown_timeout_seconds»
  shutdown_delay_seconds: «server.shutdown_delay_seconds»
  header_read_timeout_seconds: «server.header_read_timeout_seconds»
  readiness_probe_interval_seconds: «server.readiness_probe_interval_seconds»
  max_connections: «server.max_connections»
  idle_timeout_seconds: «server.idle_timeout_seconds»
  http2_max_concurrent_streams: «server.http2_max_concurrent_streams»
  max_header_bytes: «server.max_header_bytes»
  worker_threads: «server.worker_threads»
  max_concurrent_requests: «server.max_concurrent_requests»
  security_limits:
    max_uri_length: «server.security_limits.max_uri_length»
    max_header_size: «server.security_limits.max_header_size»
    max_body_size: «server.security_limits.max_body_size»
    max_headers: «server.security_limits.max_headers»
  trusted_proxies: ["127.0.0.1", "::1/128", "10.0.0.0/8"]
  rate_limit:
    enabled: true
    global:
      requests_per_second: «server.rate_limit.global.requests_per_second»
      burst: «server.rate_limit.global.burst»
    per_ip:
      requests_per_second: «server.rate_limit.per_ip.requests_per_second»
      burst: «server.rate_limit.per_ip.burst»
      max_tracked_ips: «server.rate_limit.per_ip.max_tracked_ips»
  https:
    enabled: false
    cert_path: /nonexistent/cert.pem
    key_path: /nonexistent/key.pem
    min_tls_version: "1.3"
    plain_address: "127.0.0.1:0"
    client_ca_path: /nonexistent/ca.pem
admin:
  enabled: false
  jwt:
    algorithm: HS256
    secret: «secret»
    leeway_seconds: «admin.jwt.leeway_seconds»
metrics:
  enabled: true
  port: «metrics.port»
logging:
  level: error
upstream:
  pool_max_idle_per_host: «upstream.pool_max_idle_per_host»
  pool_idle_timeout_seconds: «upstream.pool_idle_timeout_seconds»
  connect_timeout_seconds: «upstream.connect_timeout_seconds»
  read_buffer_bytes: «upstream.read_buffer_bytes»
  max_connections_per_bucket: «upstream.max_connections_per_bucket»
  connection_wait_ms: «upstream.connection_wait_ms»
jwt:
  algorithm: HS256
  secret: «secret»
  leeway_seconds: «jwt.leeway_seconds»
  token_cache_size: «jwt.token_cache_size»
audit_log:
  enabled: true
  outputs: [file]
  log_level: info
  include_claims: [sub]
  file:
    path: «audit_path»
    max_file_size_mb: «audit_log.file.max_file_size_mb»
    max_backup_files: «audit_log.file.max_backup_files»
    rotation_policy: size
    buffer_size: «audit_log.file.buffer_size»
observability:
  tracing:
    enabled: true
    exporter: otlp
    otlp_endpoint: "http://127.0.0.1:1"
    protocol: http/protobuf
    service_name: yatagarasu
    sampling_ratio: 0.5
  slow_query:
    enabled: true
    threshold_ms: «observability.slow_query.threshold_ms»
    include_breakdown: true
  request_logging:
    log_requests: true
    log_responses: true
    exclude_paths: ["/health"]
    status_codes: [200, 404]
    log_response_body: true
    max_body_size: «observability.request_logging.max_body_size»
cors:
  allowed_origins: ["https://app.example.com", "https://*.example.org"]
  allowed_methods: [GET, HEAD]
  allowed_headers: [authorization, range]
  expose_headers: [etag, content-range]
  allow_credentials: true
  max_age_seconds: «cors.max_age_seconds»
cache:
  enabled: true
  cache_layers: [memory, disk, redis]
  stale_if_error_seconds: «cache.stale_if_error_seconds»
  slice_size_mb: «cache.slice_size_mb»
  memory:
    max_item_size_mb: «cache.memory.max_item_size_mb»
    max_cache_size_mb: «cache.memory.max_cache_size_mb»
    default_ttl_seconds: «cache.memory.default_ttl_seconds»
  disk:
    cache_dir: «cache_dir»
    max_disk_cache_size_mb: «cache.disk.max_disk_cache_size_mb»
  redis:
    redis_url: "redis://127.0.0.1:1"
    redis_db: «cache.redis.redis_db»
    ttl_seconds: «cache.redis.ttl_seconds»
    pool_size: «cache.redis.pool_size»
    timeout_ms: «cache.redis.timeout_ms»
buckets:
  - name: a
    path_prefix: /a
    s3: «s3_a»
    rate_limit_per_user:
      requests_per_second: «buckets[0].rate_limit_per_user.requests_per_second»
      burst: «buckets[0].rate_limit_per_user.burst»
    ip_filter:
      allowlist: ["127.0.0.0/8", "::1"]
      blocklist: ["10.0.0.0/8"]
    errors: s3_xml
    website:
      index_document: index.html
      error_document: 404.html
      spa_fallback: true
    cache:
      ttl_seconds: «buckets[0].cache.ttl_seconds»
      max_item_size_mb: «buckets[0].cache.max_item_size_mb»
    auth:
      enabled: true
      authorization:
        type: rego
        policy_path: «policy»
        decision_cache_ttl_seconds: «buckets[0].auth.authorization.decision_cache_ttl_seconds»
        negative_decision_cache_ttl_seconds: «buckets[0].auth.authorization.negative_decision_cache_ttl_seconds»
        decision_cache_max_entries: «buckets[0].auth.authorization.decision_cache_max_entries»
  - name: b
    path_prefix: /b
    s3: «s3»
    cors: {allowed_origins: []}
    errors: json
    auth:
      authorization:
        type: opa
        url: "http://127.0.0.1:1/v1/data/yatagarasu/allow"
        timeout_ms: «buckets[1].auth.authorization.timeout_ms»
        fail: open
  - name: c
    path_prefix: /c
    s3: «s3»
    auth:
      enabled: true
      authorization:
        type: openfga
        endpoint: "http://127.0.0.1:1"
        store_id: 01ARZ3NDEKTSV4RRFFQ69G5FAV
        timeout_ms: «buckets[2].auth.authorization.timeout_ms»
        fail: open
  - name: d
    path_prefix: /d
    s3: «s3»
    auth:
      enabled: true
      jwt:
        jwks_url: "http://127.0.0.1:1/jwks.json"
        jwks_refresh_interval_seconds: «buckets[3].auth.jwt.jwks_refresh_interval_seconds»
        jwks_min_refresh_interval_seconds: «buckets[3].auth.jwt.jwks_min_refresh_interval_seconds»
        jwks_timeout_seconds: «buckets[3].auth.jwt.jwks_timeout_seconds»
  - name: e
    path_prefix: /e
    s3: «s3_replicas»
    cors: {allowed_origins: ["*"], max_age_seconds: «buckets[4].cors.max_age_seconds»}
"#;

/// Bucket `a`'s `s3` keys beyond the target itself.
const RESILIENCE: &str = "circuit_breaker: {\
    failure_threshold: «buckets[0].s3.circuit_breaker.failure_threshold», \
    success_threshold: «buckets[0].s3.circuit_breaker.success_threshold», \
    timeout_seconds: «buckets[0].s3.circuit_breaker.timeout_seconds», \
    half_open_max_requests: «buckets[0].s3.circuit_breaker.half_open_max_requests»}, \
    retry: {max_attempts: «buckets[0].s3.retry.max_attempts», \
    initial_backoff_ms: «buckets[0].s3.retry.initial_backoff_ms», \
    max_backoff_ms: «buckets[0].s3.retry.max_backoff_ms», \
    budget_percent: «buckets[0].s3.retry.budget_percent»}";

const S3_BUCKET: &str = "extremes";
const OBJECT: &str = "object.txt";
const BODY: &[u8] = b"served at the extremes";

/// The S3 server and files shared by every case.
struct World {
    s3: S3Server,
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

/// Panics anywhere in the process, background tasks included (a panicking
/// pool or timer task does not change any answer).
static PANICS: AtomicUsize = AtomicUsize::new(0);

impl World {
    fn new() -> World {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            default_hook(info);
        }));
        yatagarasu::auth::install_crypto_provider();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let s3 = runtime.block_on(S3Server::start(&[S3_BUCKET]));
        std::fs::write(s3.object_path(S3_BUCKET, OBJECT), BODY).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("allow.rego"),
            "package yatagarasu\nimport rego.v1\ndefault allow := true\n",
        )
        .unwrap();
        World { s3, dir, runtime }
    }

    /// The base configuration with `key` set to `value` (every other key at its base value).
    fn yaml(&self, key: &str, value: u64, cache_dir: &Path) -> String {
        let s3 = format!(
            "{{bucket: {S3_BUCKET}, region: us-east-1, endpoint: {}, access_key: {ACCESS_KEY}, \
             secret_key: {}}}",
            q(&self.s3.endpoint()),
            q(SECRET_KEY)
        );
        // One replica (with the bucket's own keys), and a 404 fallback.
        let replica = format!(
            "{{name: only, priority: «buckets[4].s3.replicas[0].priority», \
             timeout: «buckets[4].s3.replicas[0].timeout», {}",
            &s3[1..]
        );
        let s3_replicas = format!(
            "{}, replicas: [{replica}], fallback_on_404: {s3}}}",
            &s3[..s3.len() - 1]
        );
        // Bucket `a` also has a bucket rate limit, a circuit breaker and retries.
        let s3_a = format!(
            "{}, {RESILIENCE}, rate_limit: {{requests_per_second: \
             «buckets[0].s3.rate_limit.requests_per_second», \
             burst: «buckets[0].s3.rate_limit.burst»}}}}",
            s3.trim_end_matches('}')
        );
        let mut yaml = TEMPLATE
            .replace("«s3_replicas»", &s3_replicas)
            .replace("«s3_a»", &s3_a)
            .replace("«s3»", &s3)
            .replace("«secret»", &q(JWT_SECRET))
            .replace("«cache_dir»", &q(cache_dir.to_str().unwrap()))
            .replace(
                "«audit_path»",
                &q(cache_dir.join("audit.jsonl").to_str().unwrap()),
            )
            .replace(
                "«policy»",
                &q(self.dir.path().join("allow.rego").to_str().unwrap()),
            );
        for (field, base) in FIELDS {
            let shown = if *field == key { value } else { *base };
            yaml = yaml.replace(&format!("«{field}»"), &shown.to_string());
        }
        assert!(!yaml.contains('«'), "a placeholder is left:\n{yaml}");
        yaml
    }

    /// Checks one value of one key; `Err` describes what went wrong.
    fn check(&self, key: &str, value: u64) -> Result<(), String> {
        let cache_dir = tempfile::tempdir().unwrap();
        let yaml = self.yaml(key, value, cache_dir.path());
        match Config::from_yaml_str_with_env(&yaml, &|_| None) {
            Err(errors) if errors.0.iter().any(|e| e.path == key) => Ok(()),
            Err(errors) => Err(format!(
                "{key} = {value}: refused, but not at {key}:\n{errors}"
            )),
            Ok(config) => {
                let panics = PANICS.load(Ordering::SeqCst);
                // A panic while the test polls a response body reaches this thread.
                let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.runtime.block_on(serve(config))
                }));
                if PANICS.load(Ordering::SeqCst) != panics {
                    return Err(format!("{key} = {value}: accepted, then a panic"));
                }
                match served {
                    Ok(result) => {
                        result.map_err(|e| format!("{key} = {value}: accepted, then {e}"))
                    }
                    Err(_) => Err(format!("{key} = {value}: accepted, then a panic")),
                }
            }
        }
    }
}

/// Builds the proxy and sends one GET to each bucket.
async fn serve(config: Config) -> Result<(), String> {
    let proxy = Proxy::builder(config)
        .build()
        .map_err(|e| format!("the stack did not build: {e}"))?;
    let token = token();
    for (bucket, expected) in [
        ("a", Some(StatusCode::OK)),
        ("b", Some(StatusCode::OK)),
        ("c", Some(StatusCode::OK)),
        ("d", None),
        ("e", Some(StatusCode::OK)),
    ] {
        let (status, body) = get(&proxy, &format!("/{bucket}/{OBJECT}"), &token).await;
        let served = match expected {
            // A rate limit at its smallest burst refuses the later buckets.
            _ if status == StatusCode::TOO_MANY_REQUESTS => true,
            Some(expected) => status == expected && body == BODY,
            None => status != StatusCode::INTERNAL_SERVER_ERROR,
        };
        if !served {
            return Err(format!(
                "GET /{bucket}/{OBJECT} answered {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
    }
    Ok(())
}

async fn get(proxy: &Proxy, path: &str, token: &str) -> (StatusCode, Vec<u8>) {
    let mut request = Request::get(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(ClientAddr(SocketAddr::from(([127, 0, 0, 1], 40000))));
    let Ok(response) = proxy.clone().oneshot(request).await;
    let status = response.status();
    let body = response.into_body().collect().await.map_or_else(
        |e| format!("(body failed: {e})").into_bytes(),
        |b| b.to_bytes().to_vec(),
    );
    (status, body)
}

/// A valid HS256 token for the top-level `jwt:` section.
fn token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &Header::default(),
        &json!({"sub": "extremes", "exp": now + 600}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap()
}

fn world() -> &'static World {
    static WORLD: std::sync::OnceLock<World> = std::sync::OnceLock::new();
    WORLD.get_or_init(World::new)
}

#[test]
fn the_base_configuration_serves() {
    let world = world();
    world.check("none", 0).unwrap();
}

#[test]
fn every_numeric_key_at_the_extremes_is_refused_by_path_or_served() {
    let world = world();
    let failures: Vec<String> = FIELDS
        .iter()
        .flat_map(|(key, _)| EXTREMES.iter().map(move |value| (*key, *value)))
        .filter_map(|(key, value)| world.check(key, value).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a background task panicked"
    );
}

/// Values proptest picks: small ones, ones around 2^31 and 2^32, and any u64.
fn values() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..=100_000,
        (1u64 << 31) - 1000..=(1u64 << 32) + 1000,
        any::<u64>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_values_are_refused_by_path_or_served(
        field in 0..FIELDS.len(),
        value in values(),
    ) {
        let (key, _) = FIELDS[field];
        if let Err(failure) = world().check(key, value) {
            prop_assert!(false, "{}", failure);
        }
    }
}

/// The listener settings, which the in-process proxy does not use, at their
/// largest accepted values in the real binary: it must still serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_settings_at_their_largest_values_serve() {
    let s3 = S3Server::start(&[S3_BUCKET]).await;
    std::fs::write(s3.object_path(S3_BUCKET, OBJECT), BODY).unwrap();
    let max = 1u64 << 31;
    let bucket = common::BucketCfg::new("a", &s3, S3_BUCKET);
    let mut cfg = common::Config::new(vec![bucket]);
    cfg.request_timeout_seconds = max;
    cfg.readiness_probe_interval_seconds = max;
    let yaml = cfg
        .yaml()
        .replacen(
            "server:\n",
            &format!(
                "server:\n  header_read_timeout_seconds: {max}\n  max_connections: {}\n  \
                 max_header_bytes: 1048576\n  idle_timeout_seconds: 3600\n  \
                 http2_max_concurrent_streams: 1000\n",
                max - 1
            ),
            1,
        )
        .replacen(
            "admin:\n",
            &format!(
                "upstream:\n  pool_idle_timeout_seconds: {max}\n  connect_timeout_seconds: {max}\n  \
                 pool_max_idle_per_host: {}\nadmin:\n",
                max - 1
            ),
            1,
        );
    let proxy = common::Proxy::start_yaml(&yaml, &[]).await;
    for _ in 0..2 {
        let response = common::get(proxy.main, &format!("/a/{OBJECT}")).await;
        assert_eq!(response.status, 200, "{}", proxy.log_dump());
        assert_eq!(response.body, BODY);
    }
}
