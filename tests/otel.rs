//! OpenTelemetry traces and the slow-request log, through the real binary:
//! an OTLP/HTTP receiver in the test process decodes what the proxy exports
//! (`opentelemetry-proto`); the proxy is stopped with SIGTERM, which exports
//! every queued span before it exits, so no test waits on the batch timer.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use common::jwks::{SECRET, claims, sign};
use common::*;
use jsonwebtoken::Algorithm;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;
use serde_json::{Value, json};

const BKT: &str = "otel-bkt";
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// One exported span, as the receiver decoded it.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    attributes: HashMap<String, String>,
}

/// An OTLP/HTTP collector on 127.0.0.1:0 keeping every span it is sent.
struct Collector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Exported>>>,
    posts: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn decode(body: &[u8]) -> Vec<Exported> {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf body");
    let mut out = Vec::new();
    for resource in request.resource_spans {
        let service = (resource.resource.iter())
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| text(a.value.as_ref()))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                out.push(Exported {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    attributes: (span.attributes.iter())
                        .map(|a| (a.key.clone(), text(a.value.as_ref())))
                        .collect(),
                });
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Collector {
    async fn start() -> Collector {
        let spans: Arc<Mutex<Vec<Exported>>> = Arc::default();
        let posts: Arc<Mutex<usize>> = Arc::default();
        let (s, p) = (spans.clone(), posts.clone());
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| {
                let (s, p) = (s.clone(), p.clone());
                async move {
                    *p.lock().unwrap() += 1;
                    s.lock().unwrap().extend(decode(&body));
                    ([("content-type", "application/x-protobuf")], Bytes::new())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Collector {
            addr,
            spans,
            posts,
            task,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn spans(&self) -> Vec<Exported> {
        self.spans.lock().unwrap().clone()
    }

    fn posts(&self) -> usize {
        *self.posts.lock().unwrap()
    }
}

fn tracing_yaml(endpoint: &str, ratio: &str, service: &str) -> String {
    format!(
        "observability:\n  tracing:\n    enabled: true\n    exporter: otlp\n    otlp_endpoint: {}\n    \
         protocol: http/protobuf\n    service_name: {service}\n    sampling_ratio: {ratio}\n",
        q(endpoint)
    )
}

/// The memory cache (items up to 1 MiB); `extra` adds keys inside `cache:`.
fn cache_yaml(extra: &str) -> String {
    format!(
        "cache:\n  enabled: true\n{extra}  memory:\n    max_item_size_mb: 1\n    \
         max_cache_size_mb: 16\n    default_ttl_seconds: 3600\n"
    )
}

/// Bucket `name` over `s3`, private: HS256 tokens signed with `SECRET`.
fn private_bucket(name: &str, s3: &S3Server) -> BucketCfg {
    let mut bucket = BucketCfg::new(name, s3, BKT);
    bucket.extra_yaml = format!(
        "    auth:\n      enabled: true\n      jwt:\n        algorithm: HS256\n        secret: {}\n",
        q(SECRET)
    );
    bucket
}

/// A proxy of `bucket` with `extra` at the top level; readiness probes
/// (which would make spans of their own) as rare as possible.
fn config(bucket: BucketCfg, extra: String) -> Config {
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = extra;
    cfg
}

/// Stops the proxy with SIGTERM: it exports what is queued, then exits.
async fn stop(proxy: &mut Proxy) {
    proxy.signal("TERM");
    let status = proxy.wait_exit(DEADLINE).await;
    assert!(status.success(), "exit {status}\n{}", proxy.log_dump());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_nest_under_the_request_and_continue_the_clients_trace() {
    let s3 = S3Server::start(&[BKT]).await;
    let body = pattern_bytes(3000);
    s3.write_object(BKT, "a.bin", &body);
    let collector = Collector::start().await;
    let tracing = tracing_yaml(&collector.endpoint(), "1.0", "otel-test");
    let cfg = config(private_bucket("traced", &s3), cache_yaml("") + &tracing);
    let mut proxy = Proxy::start(&cfg).await;
    let token = sign(Algorithm::HS256, "", None, &claims(json!({})));
    let bearer = format!("Bearer {token}");
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let r = send(
        proxy.main,
        "GET",
        "/traced/a.bin",
        &[
            ("authorization", &bearer),
            ("traceparent", &traceparent),
            ("x-request-id", "otel-1"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &body[..]);
    assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
    let access = proxy.wait_access_log("otel-1").await;
    assert_eq!(access["trace_id"], CLIENT_TRACE, "{access}");
    // The same object again: a memory hit, a trace of its own, no fill.
    let headers = [
        ("authorization", bearer.as_str()),
        ("x-request-id", "otel-2"),
    ];
    let hit = send(proxy.main, "GET", "/traced/a.bin", &headers).await;
    assert_eq!(hit.status, 200, "{}", hit.describe());
    assert_eq!(hit.body.as_ref(), &body[..]);
    assert_eq!(
        hit.header("x-cache"),
        Some("HIT memory"),
        "{}",
        hit.describe()
    );
    stop(&mut proxy).await;

    let spans = collector.spans();
    let request = spans
        .iter()
        .find(|s| s.trace_id == CLIENT_TRACE && s.parent == CLIENT_SPAN)
        .unwrap_or_else(|| panic!("no request span continuing the client's trace: {spans:#?}"));
    assert_eq!(request.service, "otel-test");
    assert_eq!(request.name, "GET /traced", "{request:#?}");
    let attr = |span: &Exported, key: &str| span.attributes.get(key).cloned().unwrap_or_default();
    assert_eq!(attr(request, "http.request.method"), "GET");
    assert_eq!(attr(request, "http.route"), "/traced");
    assert_eq!(attr(request, "http.response.status_code"), "200");
    assert_eq!(attr(request, "request_id"), "otel-1");
    let children: Vec<&Exported> = spans
        .iter()
        .filter(|s| s.parent == request.span_id)
        .collect();
    for s in &children {
        assert_eq!(s.trace_id, CLIENT_TRACE, "{s:#?}");
    }
    let child = |name: &str| {
        *children
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no `{name}` child of the request span: {spans:#?}"))
    };
    assert_eq!(attr(child("auth"), "bucket"), "traced");
    assert_eq!(attr(child("cache.lookup"), "bucket"), "traced");
    let upstream = child("upstream");
    assert_eq!(attr(upstream, "bucket"), "traced");
    assert_eq!(attr(upstream, "replica"), "primary");
    assert_eq!(attr(upstream, "retry"), "0");
    assert_eq!(attr(upstream, "http.response.status_code"), "200");
    // The miss was stored while it streamed: a `cache.fill` child.
    let fill = child("cache.fill");
    assert_eq!(attr(fill, "bucket"), "traced");
    assert_eq!(attr(fill, "tier"), "memory");
    assert_eq!(attr(fill, "bytes"), "3000");
    assert_eq!(attr(fill, "outcome"), "stored");

    let hit = spans
        .iter()
        .find(|s| s.attributes.get("request_id").map(String::as_str) == Some("otel-2"))
        .unwrap_or_else(|| panic!("no span of the hit: {spans:#?}"));
    let hit_children: Vec<&str> = (spans.iter())
        .filter(|s| s.parent == hit.span_id)
        .map(|s| s.name.as_str())
        .collect();
    assert!(hit_children.contains(&"cache.lookup"), "{hit_children:?}");
    assert!(!hit_children.contains(&"cache.fill"), "{hit_children:?}");
    assert_eq!(
        (spans.iter()).filter(|s| s.name == "cache.fill").count(),
        1,
        "{spans:#?}"
    );
}

/// A range miss fetches the whole object in a task of its own: its fill is
/// still a `cache.fill` child of the request that started it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_miss_exports_the_fill_of_the_whole_object() {
    let s3 = S3Server::start(&[BKT]).await;
    let body = pattern_bytes(3000);
    s3.write_object(BKT, "clip.bin", &body);
    let collector = Collector::start().await;
    let tracing = tracing_yaml(&collector.endpoint(), "1", "ranges");
    let cfg = config(BucketCfg::new("b", &s3, BKT), cache_yaml("") + &tracing);
    let mut proxy = Proxy::start(&cfg).await;
    let headers = [("range", "bytes=0-9"), ("x-request-id", "range-1")];
    let first = send(proxy.main, "GET", "/b/clip.bin", &headers).await;
    assert_eq!(first.status, 206, "{}", first.describe());
    assert_eq!(first.body.as_ref(), &body[..10]);
    assert_eq!(
        first.header("x-cache"),
        Some("MISS"),
        "{}",
        first.describe()
    );
    // The object's last byte is answered once the object is stored.
    let last = send(proxy.main, "GET", "/b/clip.bin", &[("range", "bytes=-1")]).await;
    assert_eq!(last.status, 206, "{}", last.describe());
    assert_eq!(last.body.as_ref(), &body[2999..]);
    stop(&mut proxy).await;
    let spans = collector.spans();
    let request = spans
        .iter()
        .find(|s| s.attributes.get("request_id").map(String::as_str) == Some("range-1"))
        .unwrap_or_else(|| panic!("no span of the range miss: {spans:#?}"));
    let fill = spans
        .iter()
        .find(|s| s.name == "cache.fill")
        .unwrap_or_else(|| panic!("no cache.fill span: {spans:#?}"));
    assert_eq!(fill.parent, request.span_id, "{fill:#?}");
    assert_eq!(fill.trace_id, request.trace_id, "{fill:#?}");
    let attr = |key: &str| fill.attributes.get(key).cloned().unwrap_or_default();
    assert_eq!(attr("tier"), "memory");
    assert_eq!(attr("bytes"), "3000");
    assert_eq!(attr("outcome"), "stored");
}

/// An object over the item limit is cached in slices, fetched while the
/// body streams: each slice fetched has its `cache.fill` child of the
/// request that read it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_slice_fetched_exports_its_fill() {
    const SLICE: usize = 256 * 1024;
    let s3 = S3Server::start(&[BKT]).await;
    let body = pattern_bytes(2 * 1024 * 1024 + 100);
    s3.write_object(BKT, "film.mp4", &body);
    let collector = Collector::start().await;
    let tracing = tracing_yaml(&collector.endpoint(), "1", "slices");
    let cache = cache_yaml("  slice_size_mb: 256KB\n");
    let cfg = config(BucketCfg::new("b", &s3, BKT), cache + &tracing);
    let mut proxy = Proxy::start(&cfg).await;
    // Bytes of slices 0 and 1.
    let spec = format!("bytes=100-{}", SLICE + 99);
    let headers = [("range", spec.as_str()), ("x-request-id", "slices-1")];
    let r = send(proxy.main, "GET", "/b/film.mp4", &headers).await;
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.body.as_ref(), &body[100..SLICE + 100]);
    stop(&mut proxy).await;
    let spans = collector.spans();
    let request = spans
        .iter()
        .find(|s| s.attributes.get("request_id").map(String::as_str) == Some("slices-1"))
        .unwrap_or_else(|| panic!("no span of the sliced read: {spans:#?}"));
    let mut fills: Vec<_> = (spans.iter())
        .filter(|s| s.name == "cache.fill" && s.parent == request.span_id)
        .map(|s| {
            let attr = |key: &str| s.attributes.get(key).cloned().unwrap_or_default();
            (attr("slice"), attr("bytes"), attr("outcome"))
        })
        .collect();
    fills.sort();
    let whole = SLICE.to_string();
    let expected = [("0", &whole, "stored"), ("1", &whole, "stored")]
        .map(|(i, b, o)| (i.to_owned(), b.clone(), o.to_owned()));
    assert_eq!(fills, expected, "{spans:#?}");
}

/// `propagate_context: false` (the original's key): a client's
/// `traceparent` is not continued; the request starts a trace of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_propagation_a_request_starts_its_own_trace() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "a.txt", b"own trace");
    let collector = Collector::start().await;
    let tracing = tracing_yaml(&collector.endpoint(), "1", "ratio");
    let cfg = config(
        BucketCfg::new("b", &s3, BKT),
        tracing + "    propagate_context: false\n",
    );
    let mut proxy = Proxy::start(&cfg).await;
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let headers = [
        ("traceparent", traceparent.as_str()),
        ("x-request-id", "ratio-1"),
    ];
    let r = send(proxy.main, "GET", "/b/a.txt", &headers).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"own trace");
    stop(&mut proxy).await;
    let spans = collector.spans();
    assert!(control_has_request(&spans), "{spans:#?}");
    let request = spans
        .iter()
        .find(|s| s.name == "GET /b")
        .expect("request span");
    assert_ne!(request.trace_id, CLIENT_TRACE, "{request:#?}");
    assert!(request.parent.is_empty(), "{request:#?}");
    assert!(
        spans.iter().all(|s| s.trace_id != CLIENT_TRACE),
        "{spans:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_ratio_zero_exports_nothing() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "a.txt", b"sampled or not");
    let (none, all) = (Collector::start().await, Collector::start().await);
    let start = |collector: &Collector, ratio: &str| {
        let tracing = tracing_yaml(&collector.endpoint(), ratio, "ratio");
        config(BucketCfg::new("b", &s3, BKT), tracing)
    };
    let mut unsampled = Proxy::start(&start(&none, "0")).await;
    let mut control = Proxy::start(&start(&all, "1")).await;
    for proxy in [&unsampled, &control] {
        let r = send(
            proxy.main,
            "GET",
            "/b/a.txt",
            &[("x-request-id", "ratio-1")],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.body.as_ref(), b"sampled or not");
    }
    let access = unsampled.wait_access_log("ratio-1").await;
    assert!(access.get("trace_id").is_none(), "{access}");
    stop(&mut unsampled).await;
    stop(&mut control).await;
    // The control proxy, configured alike but sampling everything, exported
    // its request by the time it exited; the other sent nothing at all.
    assert!(
        control_has_request(&all.spans()),
        "control exported {:#?}",
        all.spans()
    );
    assert_eq!(none.posts(), 0, "{:#?}", none.spans());
}

/// Parent-based sampling: a client's sampled `traceparent` is continued
/// even at `sampling_ratio: 0`, with its trace id, children included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_client_parent_is_exported_at_ratio_zero() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "a.txt", b"the client samples");
    let collector = Collector::start().await;
    let tracing = tracing_yaml(&collector.endpoint(), "0", "parent");
    let cfg = config(BucketCfg::new("b", &s3, BKT), tracing);
    let mut proxy = Proxy::start(&cfg).await;
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let headers = [
        ("traceparent", traceparent.as_str()),
        ("x-request-id", "parent-1"),
    ];
    let r = send(proxy.main, "GET", "/b/a.txt", &headers).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"the client samples");
    let access = proxy.wait_access_log("parent-1").await;
    assert_eq!(access["trace_id"], CLIENT_TRACE, "{access}");
    stop(&mut proxy).await;
    let spans = collector.spans();
    let request = spans
        .iter()
        .find(|s| s.trace_id == CLIENT_TRACE && s.parent == CLIENT_SPAN)
        .unwrap_or_else(|| panic!("no request span continuing the client's trace: {spans:#?}"));
    assert_eq!(request.name, "GET /b", "{request:#?}");
    let upstream = spans
        .iter()
        .find(|s| s.name == "upstream")
        .unwrap_or_else(|| panic!("no upstream span: {spans:#?}"));
    assert_eq!(upstream.parent, request.span_id, "{upstream:#?}");
    assert_eq!(upstream.trace_id, CLIENT_TRACE, "{upstream:#?}");
}

/// Parent-based sampling the other way: a client's unsampled `traceparent`
/// (flags `00`) is not exported at `sampling_ratio: 1`, neither its request
/// nor any child as a trace of its own; a request without one is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsampled_client_parent_exports_nothing_at_ratio_one() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "a.txt", b"the client does not sample");
    let collector = Collector::start().await;
    let tracing = tracing_yaml(&collector.endpoint(), "1", "ratio");
    let cfg = config(private_bucket("b", &s3), tracing);
    let mut proxy = Proxy::start(&cfg).await;
    let bearer = format!(
        "Bearer {}",
        sign(Algorithm::HS256, "", None, &claims(json!({})))
    );
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-00");
    for (id, traceparent) in [("unsampled-1", Some(&traceparent)), ("ratio-1", None)] {
        let mut headers = vec![("authorization", bearer.as_str()), ("x-request-id", id)];
        headers.extend(traceparent.map(|t| ("traceparent", t.as_str())));
        let r = send(proxy.main, "GET", "/b/a.txt", &headers).await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.body.as_ref(), b"the client does not sample");
    }
    let access = proxy.wait_access_log("unsampled-1").await;
    assert!(access.get("trace_id").is_none(), "{access}");
    stop(&mut proxy).await;
    let spans = collector.spans();
    // The control request was exported, with its children (auth, upstream).
    let control = spans
        .iter()
        .find(|s| s.attributes.get("request_id").map(String::as_str) == Some("ratio-1"))
        .unwrap_or_else(|| panic!("control request not exported: {spans:#?}"));
    for name in ["auth", "upstream"] {
        assert!(
            spans
                .iter()
                .any(|s| s.name == name && s.parent == control.span_id),
            "no `{name}` child of the control request: {spans:#?}"
        );
    }
    // Every exported span is of the control's trace: nothing of the other request.
    assert!(
        spans.iter().all(|s| s.trace_id == control.trace_id),
        "{spans:#?}"
    );
}

fn control_has_request(spans: &[Exported]) -> bool {
    spans.iter().any(|s| {
        s.name == "GET /b" && s.attributes.get("request_id").map(String::as_str) == Some("ratio-1")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_changes_nothing_for_clients() {
    let s3 = S3Server::start(&[BKT]).await;
    let body = pattern_bytes(20_000);
    s3.write_object(BKT, "big.bin", &body);
    // A port nobody listens on any more: every export is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let cfg = config(
        BucketCfg::new("b", &s3, BKT),
        tracing_yaml(&dead, "1.0", "down"),
    );
    let mut proxy = Proxy::start(&cfg).await;
    for i in 0..20 {
        let r = send(
            proxy.main,
            "GET",
            "/b/big.bin",
            &[("x-request-id", &format!("down-{i}"))],
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.body.as_ref(), &body[..], "request {i}");
        let missing = send(proxy.main, "GET", "/b/missing.bin", &[]).await;
        assert_eq!(missing.status, 404, "{}", missing.describe());
    }
    stop(&mut proxy).await;
    // The shutdown export failed too, within the same interval: one line.
    let failures: Vec<Value> = proxy
        .json_logs()
        .into_iter()
        .filter(|v| log_message(v).is_some_and(|m| m.starts_with("trace export failed")))
        .collect();
    assert_eq!(failures.len(), 1, "{failures:#?}\n{}", proxy.log_dump());
    assert_eq!(failures[0]["level"], "WARN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_is_logged_with_its_breakdown() {
    let delay = Duration::from_millis(60);
    let upstream =
        ScriptedUpstream::start(move |_| Reply::ok(b"late but whole".to_vec()).delayed(delay))
            .await;
    let bucket = BucketCfg::at(
        "slow",
        &upstream.endpoint(),
        "bkt",
        "AKIDSLOW",
        "slow-secret",
    );
    let slow = "observability:\n  slow_query:\n    enabled: true\n    threshold_ms: 1\n    \
                include_breakdown: true\n";
    let cfg = config(bucket, slow.to_owned());
    let proxy = Proxy::start(&cfg).await;
    let r = send(
        proxy.main,
        "GET",
        "/slow/k.txt",
        &[("x-request-id", "slow-1")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"late but whole");
    let (_, line) = proxy
        .wait_for_log(0, "slow request line", DEADLINE, |v| {
            v["target"] == "slow_request" && v["request_id"] == "slow-1"
        })
        .await;
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(line["message"], "slow request");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/slow/k.txt");
    assert_eq!(line["bucket"], "slow");
    assert_eq!(line["status"], 200);
    assert_eq!(line["threshold_ms"], 1);
    for field in ["auth_ms", "authz_ms", "cache_ms", "streaming_ms"] {
        assert!(line[field].is_number(), "{field}: {line}");
    }
    // The upstream held its headers back for `delay`: that time is S3's.
    let s3_ms = line["s3_headers_ms"].as_f64().unwrap_or(-1.0);
    assert!(s3_ms >= delay.as_millis() as f64, "{line}");
    assert!(
        line["duration_ms"].as_f64().unwrap_or(0.0) >= s3_ms,
        "{line}"
    );
}
