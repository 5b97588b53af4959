//! The tracer provider: parent-based ratio sampling, a batch span processor
//! (its own thread and a bounded queue: a full queue drops spans, it never
//! blocks a request) and the OTLP/HTTP protobuf exporter.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::registry::LookupSpan;

use super::client::ExportClient;
use super::config::TracingConfig;
use crate::config::UpstreamConfig;

/// How long one export may take (the collector's answer included).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long shutdown waits for the last batch.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps the tracer provider; [`TracingGuard::shutdown`] exports what is queued.
#[derive(Debug)]
pub struct TracingGuard {
    provider: SdkTracerProvider,
}

impl TracingGuard {
    /// Exports the spans still queued and stops the export thread. It blocks
    /// (up to a few seconds): call it from a blocking thread while the
    /// runtime that carries the export is still running.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!(%error, "trace export: shutdown did not complete");
        }
    }
}

/// Builds the tracer provider for `config` and turns span creation on.
///
/// The exporter posts through a client of its own (built like the S3
/// clients, from `upstream`), its requests run on `runtime`.
pub fn install(
    config: &TracingConfig,
    upstream: &UpstreamConfig,
    runtime: tokio::runtime::Handle,
) -> Result<(TracingGuard, SdkTracer), String> {
    let client = ExportClient::new(upstream, runtime, EXPORT_TIMEOUT)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("trace exporter: {e}"))?;
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio)));
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    // Requests are decided by the same sampler before their span is made
    // (`sampling`); the provider decides again when a span is built and
    // agrees, as a root span gets the trace id it was decided on.
    super::sampling::set_sampler(sampler.clone());
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_id_generator(super::sampling::DecidedIds::default())
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("yatagarasu");
    super::set_propagate(config.propagate_context);
    super::set_enabled(true);
    Ok((TracingGuard { provider }, tracer))
}

/// The `tracing` layer that hands sampled requests' spans to `tracer`: the
/// request span made at [`super::REQUEST_TARGET`] and its children at
/// [`super::SPAN_TARGET`]. An unsampled request's span, other spans and all
/// events stay out of the traces.
pub fn layer<S>(tracer: SdkTracer) -> impl Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let ours = Targets::new()
        .with_target(super::REQUEST_TARGET, LevelFilter::INFO)
        .with_target(super::SPAN_TARGET, LevelFilter::INFO);
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_tracked_inactivity(false)
        .with_filter(ours)
}
