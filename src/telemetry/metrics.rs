//! Metric names (one place, so dashboards and code agree) and the Prometheus recorder.
//!
//! Labels stay low-cardinality: bucket names from the configuration, methods
//! folded to GET/HEAD/OTHER, numeric statuses. Never keys or paths.

use std::sync::{Arc, OnceLock};

use metrics::{Counter, Gauge, Histogram, SharedString};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by bucket, method and status.
pub const HTTP_REQUESTS_TOTAL: &str = "yatagarasu_http_requests_total";
/// Time from request to the last body byte (or the client going away).
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "yatagarasu_http_request_duration_seconds";
/// Requests whose response body has not finished yet.
pub const HTTP_REQUESTS_IN_FLIGHT: &str = "yatagarasu_http_requests_in_flight";
/// Response body bytes sent, by bucket.
pub const HTTP_RESPONSE_BYTES_TOTAL: &str = "yatagarasu_http_response_bytes_total";
/// Requests sent to S3, by bucket and the status S3 answered (or `error` / `timeout`).
pub const UPSTREAM_REQUESTS_TOTAL: &str = "yatagarasu_upstream_requests_total";
/// Time until S3's response headers arrived.
pub const UPSTREAM_REQUEST_DURATION_SECONDS: &str = "yatagarasu_upstream_request_duration_seconds";
/// Log lines dropped because the log writer could not keep up.
pub const LOG_LINES_DROPPED_TOTAL: &str = "yatagarasu_log_lines_dropped_total";
/// Audit records dropped, by output, because its queue was full (or it had stopped).
pub const AUDIT_DROPPED_TOTAL: &str = "yatagarasu_audit_dropped_total";
/// 1 when the bucket's backend answered its last readiness probe.
pub const BACKEND_UP: &str = "yatagarasu_backend_up";
/// Configuration reloads, by result (`success`/`failure`).
pub const CONFIG_RELOADS_TOTAL: &str = "yatagarasu_config_reloads_total";
/// The generation of the configuration in force (1 at start, +1 per reload).
pub const CONFIG_GENERATION: &str = "yatagarasu_config_generation";
/// Always 1, labelled with the version.
pub const BUILD_INFO: &str = "yatagarasu_build_info";

/// Authentication outcomes, by bucket and result
/// (`success`, `missing`, `invalid`, `expired`, `denied`, `error`).
pub const AUTH_REQUESTS_TOTAL: &str = "yatagarasu_auth_requests_total";
/// Tokens presented to private buckets, by bucket and whether the
/// verified-token cache answered (`hit`) or the token was verified (`miss`).
pub const AUTH_TOKEN_CACHE_TOTAL: &str = "yatagarasu_auth_token_cache_total";
/// Policy decisions, by bucket, engine (`rego`/`opa`/`openfga`) and result
/// (`allow`, `deny`, `error`).
pub const AUTHZ_DECISIONS_TOTAL: &str = "yatagarasu_authz_decisions_total";
/// Policy decision cache lookups, by engine and result (`hit`/`miss`).
pub const AUTHZ_DECISION_CACHE_TOTAL: &str = "yatagarasu_authz_decision_cache_total";
/// JWKS fetches, by result (`success`/`failure`).
pub const JWKS_REFRESH_TOTAL: &str = "yatagarasu_jwks_refresh_total";

/// Cache outcomes per request, by bucket and result (`hit`/`miss`/`stale`/`bypass`).
pub const CACHE_REQUESTS_TOTAL: &str = "yatagarasu_cache_requests_total";
/// Cache hits, by tier.
pub const CACHE_HITS_TOTAL: &str = "yatagarasu_cache_hits_total";
/// Entries evicted to make room, by tier.
pub const CACHE_EVICTIONS_TOTAL: &str = "yatagarasu_cache_evictions_total";
/// Bytes held, by tier.
pub const CACHE_BYTES: &str = "yatagarasu_cache_bytes";
/// Entries held, by tier.
pub const CACHE_ITEMS: &str = "yatagarasu_cache_items";
/// Requests served from another request's upstream fetch.
pub const CACHE_COALESCED_TOTAL: &str = "yatagarasu_cache_coalesced_total";
/// Slices of large objects read by range answers, by bucket and result
/// (`hit`: from a tier; `miss`: fetched from S3, by this request or a concurrent one).
pub const CACHE_SLICES_TOTAL: &str = "yatagarasu_cache_slices_total";
/// Tier failures (I/O, Redis errors and timeouts), by tier; each is treated as a miss.
pub const CACHE_ERRORS_TOTAL: &str = "yatagarasu_cache_errors_total";
/// Background tier writes dropped because the fill queue was full.
pub const CACHE_FILL_DROPPED_TOTAL: &str = "yatagarasu_cache_fill_dropped_total";
/// Requests answered 503 because `server.max_concurrent_requests` were in flight.
pub const LOAD_SHED_TOTAL: &str = "yatagarasu_load_shed_total";
/// Requests refused by a security limit, by `reason`.
pub const SECURITY_LIMIT_REJECTIONS_TOTAL: &str = "yatagarasu_security_limit_rejections_total";
/// Requests answered 429 by a rate limit, by `scope` (global, ip, bucket, user) and `bucket`.
pub const RATE_LIMITED_TOTAL: &str = "yatagarasu_rate_limited_total";
/// Requests refused by a bucket's `ip_filter`, by `bucket`.
pub const IP_FILTER_DENIED_TOTAL: &str = "yatagarasu_ip_filter_denied_total";
/// Circuit breaker state by `bucket` and `replica`: 0 closed, 1 half-open, 2 open.
pub const CIRCUIT_BREAKER_STATE: &str = "yatagarasu_circuit_breaker_state";
/// Circuit breaker state changes, by `bucket`, `replica` and `to`.
pub const CIRCUIT_BREAKER_TRANSITIONS_TOTAL: &str = "yatagarasu_circuit_breaker_transitions_total";
/// Upstream requests retried, by `bucket` and `reason`.
pub const UPSTREAM_RETRIES_TOTAL: &str = "yatagarasu_upstream_retries_total";
/// Retries not made because the bucket's retry budget was spent, by `bucket`.
pub const RETRY_BUDGET_EXHAUSTED_TOTAL: &str = "yatagarasu_retry_budget_exhausted_total";
/// Requests that moved on to another replica, by `bucket`, `from` and `to`.
pub const REPLICA_FAILOVERS_TOTAL: &str = "yatagarasu_replica_failovers_total";
/// Lookups in a bucket's `fallback_on_404` bucket, by `bucket` and `result`.
pub const FALLBACK_404_TOTAL: &str = "yatagarasu_fallback_404_total";

/// Client connections open, by `listener` (`main`, `admin`, `metrics`).
pub const CLIENT_CONNECTIONS_OPEN: &str = "yatagarasu_client_connections_open";
/// Connections to S3 carrying a request for the `bucket`, from before the
/// request is sent until its response body ends. The pooled client speaks
/// HTTP/1.1 to S3, one exchange per connection, so this is the bucket's share
/// of the busy pooled connections (idle ones belong to no bucket: the pool is
/// shared by every bucket with the same trust settings).
pub const UPSTREAM_CONNECTIONS_ACTIVE: &str = "yatagarasu_upstream_connections_active";
/// Worker threads of the tokio runtime.
pub const RUNTIME_WORKERS: &str = "yatagarasu_runtime_workers";
/// Tasks alive in the tokio runtime (connections, requests, background jobs).
pub const RUNTIME_ALIVE_TASKS: &str = "yatagarasu_runtime_alive_tasks";
/// Tasks waiting in the runtime's global queue: a growing depth means the
/// workers cannot keep up.
pub const RUNTIME_GLOBAL_QUEUE_DEPTH: &str = "yatagarasu_runtime_global_queue_depth";

/// The standard process metrics (the names every Prometheus client library
/// uses), sampled at each scrape by [`crate::telemetry::process`].
pub const PROCESS_METRICS: [&str; 8] = [
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_max_fds",
    "process_threads",
    "process_start_time_seconds",
];

/// Buckets for request and upstream latencies: 0.5 ms to 60 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Installs the global Prometheus recorder and describes every metric.
///
/// Returns the handle that renders `/metrics`. Call once per process; the
/// binary does, an embedding application may install its own recorder instead.
pub fn install_prometheus() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("duration_seconds".to_owned()),
            LATENCY_BUCKETS,
        )?
        .install_recorder()?;
    describe_all();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

fn describe_all() {
    describe_requests();
    describe_operations();
    describe_access_control();
    describe_cache();
    describe_resilience();
    describe_process();
}

/// Requests as clients and S3 saw them.
fn describe_requests() {
    describe_counter!(
        HTTP_REQUESTS_TOTAL,
        "Requests answered, by bucket, method and status."
    );
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time from request to the last response byte."
    );
    describe_gauge!(
        HTTP_REQUESTS_IN_FLIGHT,
        "Requests whose response has not finished."
    );
    describe_counter!(
        LOAD_SHED_TOTAL,
        "Requests answered 503 because server.max_concurrent_requests were in flight."
    );
    describe_counter!(
        SECURITY_LIMIT_REJECTIONS_TOTAL,
        "Requests refused by a security limit (URI length, header count or size, body), by reason."
    );
    describe_counter!(
        HTTP_RESPONSE_BYTES_TOTAL,
        Unit::Bytes,
        "Response body bytes sent, by bucket."
    );
    describe_counter!(
        UPSTREAM_REQUESTS_TOTAL,
        "Requests sent to S3, by bucket and S3 status."
    );
    describe_histogram!(
        UPSTREAM_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time until S3's response headers arrived."
    );
}

/// The process, its configuration and its backends.
fn describe_operations() {
    describe_gauge!(
        BACKEND_UP,
        "1 when the bucket's backend answered its last probe."
    );
    describe_counter!(CONFIG_RELOADS_TOTAL, "Configuration reloads, by result.");
    describe_gauge!(
        CONFIG_GENERATION,
        "Generation of the configuration in force."
    );
    describe_gauge!(BUILD_INFO, "Build information.");
    describe_counter!(
        LOG_LINES_DROPPED_TOTAL,
        "Log lines dropped because the log writer could not keep up."
    );
    describe_counter!(
        AUDIT_DROPPED_TOTAL,
        "Audit records dropped, by output, because its queue was full."
    );
}

/// Authentication, key sets and policy decisions.
fn describe_access_control() {
    describe_counter!(
        AUTH_REQUESTS_TOTAL,
        "Authentication outcomes, by bucket and result."
    );
    describe_counter!(
        AUTH_TOKEN_CACHE_TOTAL,
        "Tokens answered by the verified-token cache (hit) or verified (miss), by bucket."
    );
    describe_counter!(
        AUTHZ_DECISIONS_TOTAL,
        "Policy decisions, by bucket, engine and result."
    );
    describe_counter!(
        AUTHZ_DECISION_CACHE_TOTAL,
        "Policy decision cache lookups, by engine and result."
    );
    describe_counter!(JWKS_REFRESH_TOTAL, "JWKS fetches, by result.");
}

/// The response cache and its tiers.
fn describe_cache() {
    describe_counter!(
        CACHE_REQUESTS_TOTAL,
        "Cache outcomes per request, by bucket and result."
    );
    describe_counter!(CACHE_HITS_TOTAL, "Cache hits, by tier.");
    describe_counter!(CACHE_EVICTIONS_TOTAL, "Entries evicted, by tier.");
    describe_gauge!(CACHE_BYTES, Unit::Bytes, "Bytes held, by tier.");
    describe_gauge!(CACHE_ITEMS, "Entries held, by tier.");
    describe_counter!(
        CACHE_COALESCED_TOTAL,
        "Requests served from another request's upstream fetch."
    );
    describe_counter!(
        CACHE_SLICES_TOTAL,
        "Slices of large objects read by range answers, by bucket and result (hit: from the cache, miss: fetched from S3)."
    );
    describe_counter!(
        CACHE_ERRORS_TOTAL,
        "Cache tier failures (each treated as a miss), by tier."
    );
    describe_counter!(
        CACHE_FILL_DROPPED_TOTAL,
        "Background tier writes dropped because the fill queue was full."
    );
}

/// Protection and resilience: rate limits, IP rules, breakers, retries, replicas.
fn describe_resilience() {
    describe_counter!(
        RATE_LIMITED_TOTAL,
        "Requests answered 429, by rate limit scope and bucket."
    );
    describe_counter!(
        IP_FILTER_DENIED_TOTAL,
        "Requests refused by a bucket's IP filter, by bucket."
    );
    describe_gauge!(
        CIRCUIT_BREAKER_STATE,
        "Circuit breaker state by bucket and replica: 0 closed, 1 half-open, 2 open."
    );
    describe_counter!(
        CIRCUIT_BREAKER_TRANSITIONS_TOTAL,
        "Circuit breaker state changes, by bucket, replica and new state."
    );
    describe_counter!(
        UPSTREAM_RETRIES_TOTAL,
        "Upstream requests retried, by bucket and reason."
    );
    describe_counter!(
        RETRY_BUDGET_EXHAUSTED_TOTAL,
        "Retries not made because the bucket's retry budget was spent, by bucket."
    );
    describe_counter!(
        REPLICA_FAILOVERS_TOTAL,
        "Requests that moved on to another replica, by bucket, from and to."
    );
    describe_counter!(
        FALLBACK_404_TOTAL,
        "Lookups in a bucket's 404 fallback bucket, by bucket and result."
    );
}

/// The process, the async runtime and connections.
fn describe_process() {
    crate::telemetry::process::describe();
    describe_gauge!(
        CLIENT_CONNECTIONS_OPEN,
        "Client connections open, by listener."
    );
    describe_gauge!(
        UPSTREAM_CONNECTIONS_ACTIVE,
        "Connections to S3 carrying a request for the bucket, until its response body ends."
    );
    describe_gauge!(RUNTIME_WORKERS, "Worker threads of the async runtime.");
    describe_gauge!(RUNTIME_ALIVE_TASKS, "Tasks alive in the async runtime.");
    describe_gauge!(
        RUNTIME_GLOBAL_QUEUE_DEPTH,
        "Tasks waiting in the async runtime's global queue."
    );
}

/// Metric handles of one bucket, resolved once per configuration generation
/// so the request path records without a registry lookup.
///
/// Handles bind to the recorder installed when they are created: install a
/// recorder before building the proxy (the binary does).
#[derive(Debug, Clone)]
pub struct BucketMetrics {
    /// The bucket's configured name (also the label value).
    pub name: Arc<str>,
    /// `yatagarasu_http_request_duration_seconds{bucket}`.
    pub request_duration: Histogram,
    /// `yatagarasu_http_response_bytes_total{bucket}`.
    pub response_bytes: Counter,
    /// `yatagarasu_upstream_request_duration_seconds{bucket}`.
    pub upstream_duration: Histogram,
    /// `yatagarasu_upstream_connections_active{bucket}`.
    pub upstream_active: Gauge,
    /// `yatagarasu_http_requests_total{bucket,method,status}` for the common
    /// (method, status) pairs, registered on first use (an unused pair never
    /// shows up as a zero series); other pairs are looked up per request.
    requests: [OnceLock<Counter>; COMMON_OUTCOMES.len()],
    /// `yatagarasu_upstream_requests_total{bucket,status}` for the common
    /// S3 statuses, registered on first use like `requests`.
    upstream: [OnceLock<Counter>; COMMON_UPSTREAM_STATUSES.len()],
}

/// The S3 statuses whose upstream counters a bucket keeps at hand.
const COMMON_UPSTREAM_STATUSES: [u16; 4] = [200, 206, 304, 404];

/// The (method, status) pairs whose request counters a bucket keeps at hand.
const COMMON_OUTCOMES: [(&str, u16); 8] = [
    ("GET", 200),
    ("GET", 206),
    ("GET", 304),
    ("GET", 404),
    ("HEAD", 200),
    ("HEAD", 304),
    ("HEAD", 404),
    ("GET", 403),
];

impl BucketMetrics {
    /// Registers (or finds) the bucket's series.
    pub fn new(name: Arc<str>) -> Self {
        let label = SharedString::from(name.clone());
        Self {
            request_duration: metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "bucket" => label.clone()),
            response_bytes: metrics::counter!(HTTP_RESPONSE_BYTES_TOTAL, "bucket" => label.clone()),
            upstream_duration: metrics::histogram!(UPSTREAM_REQUEST_DURATION_SECONDS, "bucket" => label.clone()),
            upstream_active: metrics::gauge!(UPSTREAM_CONNECTIONS_ACTIVE, "bucket" => label),
            requests: Default::default(),
            upstream: Default::default(),
            name,
        }
    }

    /// Counts one finished request in `yatagarasu_http_requests_total`.
    pub fn count_request(&self, method: &'static str, status: http::StatusCode) {
        let register = || {
            metrics::counter!(
                HTTP_REQUESTS_TOTAL,
                "bucket" => self.label(),
                "method" => method,
                "status" => crate::access_log::status_label(status)
            )
        };
        let code = status.as_u16();
        let slot = COMMON_OUTCOMES
            .iter()
            .position(|&(m, s)| s == code && m == method);
        increment(&self.requests, slot, register);
    }

    /// Counts one answer from S3 in `yatagarasu_upstream_requests_total`.
    pub fn count_upstream(&self, status: http::StatusCode) {
        let register = || {
            metrics::counter!(
                UPSTREAM_REQUESTS_TOTAL,
                "bucket" => self.label(),
                "status" => crate::access_log::status_label(status)
            )
        };
        let code = status.as_u16();
        let slot = COMMON_UPSTREAM_STATUSES.iter().position(|&s| s == code);
        increment(&self.upstream, slot, register);
    }

    /// The bucket label value.
    pub fn label(&self) -> SharedString {
        SharedString::from(self.name.clone())
    }
}

/// Increments the counter kept in `slots[slot]` (registered there on first
/// use), or, for a series without a slot, the one the registry finds.
fn increment(slots: &[OnceLock<Counter>], slot: Option<usize>, register: impl FnOnce() -> Counter) {
    match slot.and_then(|i| slots.get(i)) {
        Some(kept) => kept.get_or_init(register).increment(1),
        None => register().increment(1),
    }
}

/// Folds any method into a bounded label set.
pub fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        // CORS preflights, answered by the proxy.
        http::Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
