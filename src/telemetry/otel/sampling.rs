//! The sampling decision, made once per request before any span exists.
//!
//! Building a span that the sampler then drops costs most of what exporting
//! it does (the `tracing` span, its OpenTelemetry builder, every child), so
//! the request span asks the configured sampler first, with the SDK's own
//! [`ShouldSample`] API: a valid remote parent decides by its sampled flag,
//! otherwise the trace-id ratio rule decides on a fresh trace id. An
//! unsampled request then gets the plain request span and no child at all.
//!
//! A sampled root span must be exported with the trace id its decision was
//! made on (the provider's sampler, the same one, decides again when the span
//! is built and must agree): [`DecidedIds`] hands that id to the SDK.

use std::cell::Cell;
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use opentelemetry::Context;
use opentelemetry::trace::{SpanId, SpanKind, TraceContextExt, TraceId};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample,
};

/// The sampler of the installed tracer provider (none: nothing is sampled).
static SAMPLER: ArcSwapOption<Sampler> = ArcSwapOption::const_empty();

thread_local! {
    /// The trace id of the root span being started on this thread, if any.
    static DECIDED: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Makes `sampler` the one requests are decided by (the provider's own).
pub(super) fn set_sampler(sampler: Sampler) {
    SAMPLER.store(Some(Arc::new(sampler)));
}

/// What a request's span continues, when the request is sampled.
#[derive(Debug)]
pub(super) enum Sampled {
    /// The client's trace (a valid `traceparent` with its sampled flag).
    Remote(Context),
    /// A new trace with this id.
    Root(TraceId),
}

/// Whether a request whose extracted trace context is `parent` is sampled,
/// exactly as the provider's parent-based sampler decides it.
pub(super) fn decide(parent: Context) -> Option<Sampled> {
    decide_with(SAMPLER.load().as_deref()?, parent)
}

/// [`decide`] by `sampler`.
fn decide_with(sampler: &Sampler, parent: Context) -> Option<Sampled> {
    let remote = parent.span().span_context().is_valid();
    let trace_id = if remote {
        parent.span().span_context().trace_id()
    } else {
        RandomIdGenerator::default().new_trace_id()
    };
    let result = sampler.should_sample(
        Some(&parent),
        trace_id,
        "request",
        &SpanKind::Server,
        &[],
        &[],
    );
    if result.decision != SamplingDecision::RecordAndSample {
        return None;
    }
    Some(if remote {
        Sampled::Remote(parent)
    } else {
        Sampled::Root(trace_id)
    })
}

/// Runs `start` (which builds a root span's OpenTelemetry span) so that the
/// SDK gives that span `trace_id`.
pub(super) fn with_trace_id<T>(trace_id: TraceId, start: impl FnOnce() -> T) -> T {
    DECIDED.set(Some(trace_id));
    let started = start();
    // Taken by the id generator; cleared in case no span was built.
    DECIDED.set(None);
    started
}

/// The provider's id generator: random ids, except for a root span started
/// inside [`with_trace_id`], which gets the id its sampling was decided on.
#[derive(Debug, Default)]
pub(super) struct DecidedIds {
    random: RandomIdGenerator,
}

impl IdGenerator for DecidedIds {
    fn new_trace_id(&self) -> TraceId {
        DECIDED.take().unwrap_or_else(|| self.random.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use opentelemetry::trace::{SpanContext, TraceFlags, TraceState, TracerProvider as _};
    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanProcessor};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn ratio(ratio: f64) -> Sampler {
        Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
    }

    fn remote(flags: TraceFlags) -> Context {
        let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
        let span = SpanId::from_hex("00f067aa0ba902b7").unwrap();
        let context = SpanContext::new(trace, span, flags, true, TraceState::default());
        Context::new().with_remote_span_context(context)
    }

    #[test]
    fn a_remote_parent_decides_by_its_flag_whatever_the_ratio() {
        let sampled = decide_with(&ratio(0.0), remote(TraceFlags::SAMPLED));
        assert!(matches!(sampled, Some(Sampled::Remote(_))), "{sampled:?}");
        assert!(decide_with(&ratio(1.0), remote(TraceFlags::default())).is_none());
    }

    #[test]
    fn a_new_trace_is_decided_by_the_ratio() {
        assert!(decide_with(&ratio(0.0), Context::new()).is_none());
        let Some(Sampled::Root(trace_id)) = decide_with(&ratio(1.0), Context::new()) else {
            panic!("ratio 1 samples every new trace");
        };
        assert_ne!(trace_id, TraceId::INVALID);
    }

    /// Keeps the spans that end.
    #[derive(Debug, Default)]
    struct Keep(Arc<Mutex<Vec<SpanData>>>);

    impl SpanProcessor for Keep {
        fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &Context) {}
        fn on_end(&self, span: SpanData) {
            self.0.lock().unwrap().push(span);
        }
        fn force_flush(&self) -> OTelSdkResult {
            Ok(())
        }
        fn shutdown_with_timeout(&self, _: Duration) -> OTelSdkResult {
            Ok(())
        }
    }

    /// At ratio 0.5 half the new traces are sampled, each on its own trace
    /// id: the provider (deciding again) exports every one, with that id.
    #[test]
    fn a_sampled_root_is_exported_with_the_trace_id_it_was_decided_on() {
        let kept = Arc::new(Mutex::new(Vec::new()));
        let provider = SdkTracerProvider::builder()
            .with_sampler(ratio(0.5))
            .with_id_generator(DecidedIds::default())
            .with_span_processor(Keep(kept.clone()))
            .build();
        let subscriber =
            tracing_subscriber::registry().with(super::super::layer(provider.tracer("test")));
        let mut decided = Vec::new();
        tracing::subscriber::with_default(subscriber, || {
            while decided.len() < 20 {
                let Some(Sampled::Root(trace_id)) = decide_with(&ratio(0.5), Context::new()) else {
                    continue;
                };
                let span = tracing::info_span!(target: super::super::REQUEST_TARGET, "request");
                with_trace_id(trace_id, || span.context());
                decided.push(trace_id);
            }
        });
        let exported: Vec<TraceId> = (kept.lock().unwrap().iter())
            .map(|span| span.span_context.trace_id())
            .collect();
        assert_eq!(exported, decided);
    }
}
