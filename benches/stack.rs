//! One request through the whole in-process stack (`yatagarasu::Proxy`), with
//! a leaf that answers immediately, so the number is the proxy's own per-request
//! overhead: request id, access log, reload seam, rescue, health, limits, route,
//! S3 request rewrite, SigV4 signing, and consuming the response body (which is
//! when the access-log event and request metrics are recorded).
//!
//! Target: ≤ 10 µs per request (docs/PERFORMANCE.md).
//!
//! Variants, in this order (a global recorder / subscriber cannot be removed
//! once installed, so the order matters and filtering keeps it):
//! 1. `stack`: no metrics recorder, no tracing subscriber (metrics and tracing are no-ops);
//!    `stack_protected`: the same with every protection layer configured and
//!    never triggered (trusted proxies, rate limits, a 100-range IP filter, a
//!    closed circuit breaker, retries): what they add per request;
//! 2. `stack_metrics`: the production Prometheus recorder
//!    (`telemetry::metrics::install_prometheus`) with an upkeep thread, as the binary runs it;
//! 3. `stack_metrics_log_warn`: plus the production JSON `tracing` subscriber at
//!    `warn`, writing to `io::sink` (what `logging.level: warn` costs);
//! 4. `stack_metrics_log_info`: the same at `info` (the access-log line is formatted
//!    for every request; writing it to stdout is not included).
//! 5. `stack_trace_ratio_0`, `stack_trace_ratio_1`: `observability.tracing`
//!    on, sampling no new trace or every one: the production subscriber of
//!    that case (log lines at `info` behind a per-layer filter, plus the
//!    OpenTelemetry layer and its batch processor, exporting to a closed
//!    loopback port), compared with `stack_metrics_log_info`.
//!
//! `stack_audit` (after `stack_protected`): the audit layer with a file
//! output, compared with `stack` (the record is built, queued and written by
//! the writer task, which runs between requests on the bench's runtime).
//!
//! Each variant measures a 200 with a 1 KiB body, a 404 (unmapped path) and a
//! 400 (traversal), plus `leaf_only` (the fake upstream alone) for reference.
//! `get_200_1KiB` asks for one object again and again, so after the first
//! request of each second its signature is reused (`sigv4::SignatureMemo`);
//! `get_200_1KiB_distinct_objects` asks for a new object every time, so every
//! request runs the signer (the name is formatted per request, about 50 ns).
//!
//! Run: `cargo bench --bench stack -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

/// The allocator the `yatagarasu` binary ships with (`src/main.rs`), so the
/// numbers are those of the binary's request path (docs/PERFORMANCE.md has
/// signing measured with glibc's allocator too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use http::{Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use tokio::runtime::Runtime;
use tower::ServiceExt;
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, reload};
use yatagarasu::access_log::ClientAddr;
use yatagarasu::body::ProxyBody;
use yatagarasu::config::TracingConfig;
use yatagarasu::error::ProxyError;
use yatagarasu::telemetry::otel;
use yatagarasu::upstream::LeafService;
use yatagarasu::{Config, Proxy};

const CONFIG: &str = r#"
server:
  address: "127.0.0.1:0"
admin:
  enabled: false
metrics:
  enabled: false
logging:
  level: warn
buckets:
  - name: bench
    path_prefix: /bench
    s3:
      bucket: bench-bucket
      region: us-east-1
      endpoint: "http://127.0.0.1:9"
      force_path_style: true
      access_key: AKIDEXAMPLE
      secret_key: wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY
"#;

fn leaf() -> LeafService {
    let body = Bytes::from(vec![b'x'; 1024]);
    LeafService::new(tower::service_fn(move |request: Request<ProxyBody>| {
        let body = body.clone();
        async move {
            // The request must arrive signed; a cheap check keeps the bench honest.
            debug_assert!(request.headers().contains_key(header::AUTHORIZATION));
            let _ = request;
            let mut response = Response::new(yatagarasu::body::full(body));
            response.headers_mut().insert(
                header::CONTENT_LENGTH,
                header::HeaderValue::from_static("1024"),
            );
            Ok::<_, ProxyError>(response)
        }
    }))
}

fn proxy() -> Proxy {
    proxy_from(CONFIG)
}

fn proxy_from(yaml: &str) -> Proxy {
    let config = Config::from_yaml_str_with_env(yaml, &|_| None).expect("valid config");
    Proxy::builder(config)
        .upstream(leaf())
        .build()
        .expect("stack")
}

/// `CONFIG` with every protection layer configured and never triggered:
/// trusted proxies (the peer is not one), global, per-address and per-bucket
/// rate limits far above the bench's rate, an IP allowlist of 100 CIDR
/// ranges plus a blocklist, a closed circuit breaker and a retry policy.
fn protected_config() -> String {
    let allow: Vec<String> = (0..99)
        .map(|i| format!("\"10.{i}.0.0/16\""))
        .chain(["\"127.0.0.0/8\"".to_owned()])
        .collect();
    let server = "  trusted_proxies: [\"10.0.0.0/8\", \"192.0.2.0/24\"]\n  \
                  rate_limit:\n    enabled: true\n    \
                  global: { requests_per_second: 1000000, burst: 1000000 }\n    \
                  per_ip: { requests_per_second: 1000000, burst: 1000000 }\nadmin:";
    let bucket = format!(
        "    ip_filter:\n      allowlist: [{}]\n      blocklist: [\"192.168.66.0/24\"]\n    s3:",
        allow.join(", ")
    );
    let s3 = "      rate_limit: { requests_per_second: 1000000, burst: 1000000 }\n      \
              retry: { max_attempts: 3, initial_backoff_ms: 50, max_backoff_ms: 1000, budget_percent: 10 }\n      \
              circuit_breaker: { failure_threshold: 5, success_threshold: 2, timeout_seconds: 30, half_open_max_requests: 1 }\n";
    format!(
        "{}{s3}",
        CONFIG
            .replacen("admin:", server, 1)
            .replacen("    s3:", &bucket, 1)
    )
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A client request as hyper hands it to the proxy (plus the peer address).
fn client_request(path: &str) -> Request<()> {
    let mut request = Request::get(path)
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::USER_AGENT, "wrk")
        .header(header::ACCEPT, "*/*")
        .body(())
        .expect("request");
    request
        .extensions_mut()
        .insert(ClientAddr(SocketAddr::from(([127, 0, 0, 1], 40000))));
    request
}

async fn one(proxy: &Proxy, path: &str) -> (StatusCode, usize) {
    let Ok(response) = proxy.clone().oneshot(client_request(path)).await;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body.len())
}

/// `iters` requests inside one `block_on`, so the runtime entry is not measured.
fn run(rt: &Runtime, proxy: &Proxy, path: &'static str, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(one(proxy, path).await);
        }
        start.elapsed()
    })
}

/// `iters` requests for as many different objects.
fn run_distinct(rt: &Runtime, proxy: &Proxy, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            black_box(one(proxy, &format!("/bench/images/photo-{i}.jpg")).await);
        }
        start.elapsed()
    })
}

const OK: &str = "/bench/images/photo.jpg";
const UNMAPPED: &str = "/nowhere/images/photo.jpg";
const TRAVERSAL: &str = "/bench/%2e%2e/etc/passwd";

fn variant(c: &mut Criterion, name: &str) {
    variant_of(c, name, proxy());
}

fn variant_of(c: &mut Criterion, name: &str, proxy: Proxy) {
    variant_on(c, name, proxy, runtime());
}

fn variant_on(c: &mut Criterion, name: &str, proxy: Proxy, rt: Runtime) {
    // Sanity: the three answers are what the names say.
    rt.block_on(async {
        assert_eq!(one(&proxy, OK).await, (StatusCode::OK, 1024));
        assert_eq!(one(&proxy, UNMAPPED).await.0, StatusCode::NOT_FOUND);
        assert_eq!(one(&proxy, TRAVERSAL).await.0, StatusCode::BAD_REQUEST);
    });
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(1));
    group.bench_function("get_200_1KiB", |b| {
        b.iter_custom(|iters| run(&rt, &proxy, OK, iters))
    });
    group.bench_function("get_200_1KiB_distinct_objects", |b| {
        b.iter_custom(|iters| run_distinct(&rt, &proxy, iters))
    });
    group.bench_function("unmapped_404", |b| {
        b.iter_custom(|iters| run(&rt, &proxy, UNMAPPED, iters))
    });
    group.bench_function("traversal_400", |b| {
        b.iter_custom(|iters| run(&rt, &proxy, TRAVERSAL, iters))
    });
    if name == "stack" {
        // The fake upstream alone (request build + leaf + body collect), to subtract.
        let leaf = leaf();
        group.bench_function("leaf_only", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let request = client_request(OK).map(|_| yatagarasu::body::empty());
                        let response = leaf.clone().oneshot(request).await.expect("leaf");
                        let body = response.into_body().collect().await.expect("body");
                        black_box(body.to_bytes().len());
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

fn bare(c: &mut Criterion) {
    variant(c, "stack");
    variant_of(c, "stack_protected", proxy_from(&protected_config()));
    audited(c);
}

/// `CONFIG` with the audit log written to a file in a temporary directory.
fn audited(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("audit.jsonl");
    let yaml = format!(
        "{CONFIG}audit_log:\n  enabled: true\n  outputs: [file]\n  file:\n    path: {:?}\n",
        path.display().to_string()
    );
    // The file writer is a task of the runtime the proxy is built on.
    let rt = runtime();
    let proxy = {
        let _entered = rt.enter();
        proxy_from(&yaml)
    };
    variant_on(c, "stack_audit", proxy, rt);
}

fn with_metrics(c: &mut Criterion) {
    let handle = yatagarasu::telemetry::metrics::install_prometheus().expect("recorder");
    // The binary drains histograms periodically (server/metrics_http.rs); do the same.
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_secs(5));
            handle.run_upkeep();
        }
    });
    variant(c, "stack_metrics");
}

/// The production subscriber (`telemetry::logging::init`, JSON) writing to a sink.
fn with_logging(c: &mut Criterion) {
    let (filter, handle) = reload::Layer::new(EnvFilter::new("warn"));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(std::io::sink),
        )
        .try_init()
        .expect("subscriber");
    variant(c, "stack_metrics_log_warn");
    let _: Result<(), _> = handle.reload(EnvFilter::new("info"));
    variant(c, "stack_metrics_log_info");
}

/// `observability.tracing` at sampling ratios 0 and 1: the subscriber the
/// binary installs then (`telemetry::logging::init` with a tracer), made the
/// default for the bench's thread, since the global one is taken.
fn with_tracing(c: &mut Criterion) {
    for (name, ratio) in [("stack_trace_ratio_0", 0.0), ("stack_trace_ratio_1", 1.0)] {
        let rt = runtime();
        // Nobody listens there: every export fails at once (and is logged once).
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        let endpoint = format!("http://{}/v1/traces", closed.local_addr().expect("address"));
        drop(closed);
        let config = Config::from_yaml_str_with_env(CONFIG, &|_| None).expect("valid config");
        let settings = TracingConfig {
            endpoint,
            service_name: "bench".to_owned(),
            sampling_ratio: ratio,
            propagate_context: true,
        };
        let (guard, tracer) =
            otel::install(&settings, &config.upstream, rt.handle().clone()).expect("tracer");
        let hide = Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_target(otel::SPAN_TARGET, LevelFilter::OFF);
        let lines = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::sink)
            .with_filter(EnvFilter::new("info").and(hide));
        let subscriber = tracing_subscriber::registry()
            .with(lines)
            .with(otel::layer(tracer));
        let default = tracing::subscriber::set_default(subscriber);
        variant_on(c, name, proxy(), rt);
        drop(default);
        // Off the runtime: its export requests need no reactor any more
        // (they fail at once), and the last batch is dropped.
        std::thread::spawn(move || guard.shutdown());
    }
}

criterion_group!(benches, bare, with_metrics, with_logging, with_tracing);
criterion_main!(benches);
