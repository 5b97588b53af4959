//! `observability:`: OpenTelemetry traces and the slow-request log.
//!
//! Traces are `tracing` spans handed to OpenTelemetry by
//! `tracing-opentelemetry` and exported in batches over OTLP/HTTP
//! (`export.rs`, `client.rs`). The request span continues a client's W3C
//! `traceparent`; auth, authz, cache lookups and each upstream attempt are its
//! children ([`phase`]). The process-wide switches below are read with one
//! relaxed load, so with tracing and the slow log off, the layers create no
//! span and read no clock.
//!
//! - `config`: the settings and their validation.
//! - `export`: the tracer provider, its sampler and its `tracing` layer.
//! - `client`: the exporter's HTTP client and its once-per-interval error log.
//! - `phase`: per-phase spans and timings, filled by the layers.
//! - `slow`: the slow-request log line.

mod client;
pub mod config;
mod export;
pub mod phase;
pub mod slow;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use export::{TracingGuard, install, layer};

/// Target of the child spans: exported, never shown in the log lines (whose
/// `span` stays the request span, with its request id).
pub const SPAN_TARGET: &str = "yatagarasu::otel";

/// Whether spans are exported (set once, at start, by [`install`]).
static TRACING: AtomicBool = AtomicBool::new(false);

/// Whether a client's trace context is continued (`propagate_context`).
static PROPAGATE: AtomicBool = AtomicBool::new(true);

/// Whether spans are exported: layers skip making spans when not.
#[inline]
pub fn enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Turns span creation on or off for the whole process. [`install`] turns
/// it on; benches and tests that install their own subscriber use this.
pub fn set_enabled(on: bool) {
    TRACING.store(on, Ordering::Relaxed);
}

/// Sets whether a client's `traceparent`/`tracestate` is continued
/// ([`install`] sets it from `propagate_context`).
pub fn set_propagate(on: bool) {
    PROPAGATE.store(on, Ordering::Relaxed);
}

/// Which retry of its request an upstream attempt is (absent: the first try).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt(pub u32);

impl Attempt {
    /// Marks `request` as retry number `retry`, while tracing is on.
    pub fn mark<B>(request: &mut http::Request<B>, retry: u32) {
        if enabled() {
            request.extensions_mut().insert(Attempt(retry));
        }
    }

    /// The retry number of `request` (0: the first try).
    pub fn of<B>(request: &http::Request<B>) -> u32 {
        request.extensions().get::<Attempt>().map_or(0, |a| a.0)
    }
}

/// The name of the bucket `request` was routed to, for span attributes.
pub fn bucket_of<B>(request: &http::Request<B>) -> &str {
    (request
        .extensions()
        .get::<std::sync::Arc<crate::route::BucketRoute>>())
    .map_or("none", |route| &route.name)
}

/// A child span of the current one, made by `make` only while tracing is on.
#[inline]
pub fn child(make: impl FnOnce() -> Span) -> Span {
    if enabled() { make() } else { Span::none() }
}

/// The span of one request: with tracing on it carries the HTTP semantic
/// convention fields and continues the client's `traceparent`/`tracestate`.
pub fn request_span<B>(request: &http::Request<B>, id: &crate::request_id::RequestId) -> Span {
    if !enabled() {
        return tracing::info_span!("request", request_id = %id);
    }
    let method = request.method().as_str();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        otel.name = method,
        otel.kind = "server",
        http.request.method = method,
        url.path = request.uri().path(),
        http.route = Empty,
        http.response.status_code = Empty,
        otel.status_code = Empty,
    );
    if PROPAGATE.load(Ordering::Relaxed) {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(request.headers()));
        // Fails only if the span was disabled by the filter: then nothing is exported anyway.
        let _ = span.set_parent(parent);
    }
    span
}

/// Records the bucket's prefix as the current request span's `http.route`
/// (called by the route layer, inside the request span), when tracing is on.
pub fn record_route(method: &http::Method, prefix: &str) {
    if !enabled() {
        return;
    }
    let span = Span::current();
    span.record("http.route", prefix);
    // The span has started (its name field is read only then): renamed directly.
    span.context()
        .span()
        .update_name(format!("{method} {prefix}"));
}

/// Records the status sent on the request span, when tracing is on.
pub fn record_status(span: &Span, status: http::StatusCode) {
    if !enabled() {
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// The span's trace id (32 hex digits), when tracing is on and it is sampled.
pub fn trace_id(span: &Span) -> Option<String> {
    if !enabled() {
        return None;
    }
    let context = span.context();
    let otel = context.span();
    let span_context = otel.span_context();
    (span_context.is_valid() && span_context.is_sampled())
        .then(|| span_context.trace_id().to_string())
}
