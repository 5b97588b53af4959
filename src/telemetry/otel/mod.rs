//! `observability:`: OpenTelemetry traces and the slow-request log.
//!
//! Traces are `tracing` spans handed to OpenTelemetry by
//! `tracing-opentelemetry` and exported in batches over OTLP/HTTP
//! (`export.rs`, `client.rs`). The request span continues a client's W3C
//! `traceparent`; auth, authz, cache lookups and each upstream attempt are its
//! children ([`phase`]), and so is a cache fill (`crate::cache`). The process-wide switches below are read with one
//! relaxed load, so with tracing and the slow log off, the layers create no
//! span and read no clock. With tracing on, whether a request is sampled is
//! decided before its span is made (`sampling`): an unsampled request gets
//! the span it gets with tracing off, and no child.
//!
//! - `config`: the settings and their validation.
//! - `export`: the tracer provider, its sampler and its `tracing` layer.
//! - `sampling`: the per-request sampling decision, before any span exists.
//! - `client`: the exporter's HTTP client and its once-per-interval error log.
//! - `phase`: per-phase spans and timings, filled by the layers.
//! - `slow`: the slow-request log line.

mod client;
pub mod config;
mod export;
pub mod phase;
mod sampling;
pub mod slow;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::Context;
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

/// Target of a sampled request's span: the only other target the
/// OpenTelemetry layer admits, so an unsampled request's span (made at this
/// module's own target) never reaches it. Not a prefix of [`SPAN_TARGET`]
/// nor the reverse (`tracing` targets filter by prefix).
pub const REQUEST_TARGET: &str = "yatagarasu::traced";

/// The W3C header that carries a client's trace context.
static TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

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
    /// Marks `request` as retry number `retry`, when its request is sampled.
    pub fn mark<B>(request: &mut http::Request<B>, retry: u32) {
        if in_trace() {
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

/// A child span of the current one, made by `make` only while the current
/// span is exported (see [`in_trace`]): an unsampled request has no child,
/// so none can become the root of a trace of its own.
#[inline]
pub fn child(make: impl FnOnce() -> Span) -> Span {
    if in_trace() { make() } else { Span::none() }
}

/// Whether tracing is on and the current span is exported: a sampled
/// request's span or one of its children. One relaxed load when off.
#[inline]
pub fn in_trace() -> bool {
    enabled() && current_target().is_some_and(|t| t == REQUEST_TARGET || t == SPAN_TARGET)
}

/// The target of the current span, read without cloning the span.
fn current_target() -> Option<&'static str> {
    tracing::dispatcher::get_default(|dispatch| {
        (dispatch.current_span().metadata()).map(|metadata| metadata.target())
    })
}

/// Whether `span` is a sampled request's span.
fn is_traced_request(span: &Span) -> bool {
    enabled()
        && span
            .metadata()
            .is_some_and(|m| m.target() == REQUEST_TARGET)
}

/// The span of one request. With tracing on and the request sampled, it
/// carries the HTTP semantic convention fields and continues the client's
/// `traceparent`/`tracestate`; otherwise it is the plain span of tracing off.
pub fn request_span<B>(request: &http::Request<B>, id: &crate::request_id::RequestId) -> Span {
    if !enabled() {
        return plain_span(id);
    }
    // Most requests carry no trace context: one lookup, no parse.
    let parent =
        if PROPAGATE.load(Ordering::Relaxed) && request.headers().contains_key(&TRACEPARENT) {
            TraceContextPropagator::new()
                .extract_with_context(&Context::new(), &HeaderExtractor(request.headers()))
        } else {
            Context::new()
        };
    match sampling::decide(parent) {
        None => plain_span(id),
        Some(sampled) => traced_span(request, id, sampled),
    }
}

/// The request span that only the log lines see.
fn plain_span(id: &crate::request_id::RequestId) -> Span {
    tracing::info_span!("request", request_id = %id)
}

/// The request span of a sampled request, its OpenTelemetry span started
/// (in the client's trace, or a new one with the id it was sampled on).
fn traced_span<B>(
    request: &http::Request<B>,
    id: &crate::request_id::RequestId,
    sampled: sampling::Sampled,
) -> Span {
    let method = request.method().as_str();
    let span = tracing::info_span!(
        target: REQUEST_TARGET,
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
    // Errors only if the span is disabled (no OpenTelemetry layer): then nothing is exported anyway.
    match sampled {
        sampling::Sampled::Remote(parent) => {
            let _ = span.set_parent(parent);
        }
        sampling::Sampled::Root(trace_id) => {
            sampling::with_trace_id(trace_id, || span.context());
        }
    }
    span
}

/// Records the bucket's prefix as the current request span's `http.route`
/// (called by the route layer, inside the request span), when it is sampled.
pub fn record_route(method: &http::Method, prefix: &str) {
    if !(enabled() && current_target() == Some(REQUEST_TARGET)) {
        return;
    }
    let span = Span::current();
    span.record("http.route", prefix);
    // The span has started (its name field is read only then): renamed directly.
    span.context()
        .span()
        .update_name(format!("{method} {prefix}"));
}

/// Records the status sent on the request span, when it is sampled.
pub fn record_status(span: &Span, status: http::StatusCode) {
    if !is_traced_request(span) {
        return;
    }
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// The span's trace id (32 hex digits), when it is a sampled request's span.
pub fn trace_id(span: &Span) -> Option<String> {
    if !is_traced_request(span) {
        return None;
    }
    let context = span.context();
    let otel = context.span();
    let span_context = otel.span_context();
    (span_context.is_valid() && span_context.is_sampled())
        .then(|| span_context.trace_id().to_string())
}
