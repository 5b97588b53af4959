//! `tracing` subscriber setup: JSON or text, level from the configuration.
//!
//! The filter sits behind a reload handle so a config reload can change the
//! level without a restart; the format is fixed at start. Lines are written by
//! a dedicated thread (`tracing-appender`'s non-blocking writer), so a slow
//! stdout never stalls a request; when its queue is full, lines are dropped
//! and counted rather than blocking.
//!
//! The text format escapes control characters in every field (`escape.rs`),
//! so a value carrying a newline cannot forge a log line.

mod escape;

use tracing::Subscriber;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::filter::{FilterExt, LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{
    EnvFilter, Layer, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
};

use crate::config::{LogFormat, LoggingConfig};

/// Changes the log level of the running process (used by hot reload).
#[derive(Clone)]
pub struct LogLevelHandle {
    filter: reload::Handle<EnvFilter, Registry>,
    dropped: ErrorCounter,
}

impl std::fmt::Debug for LogLevelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogLevelHandle")
            .field("dropped_lines", &self.dropped_lines())
            .finish_non_exhaustive()
    }
}

/// Keeps the log writer thread alive; dropping it flushes the queued lines.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard {
    _writer: WorkerGuard,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogGuard")
    }
}

impl LogLevelHandle {
    /// Lines dropped so far because the writer's queue was full.
    pub fn dropped_lines(&self) -> usize {
        self.dropped.dropped_lines()
    }

    /// Applies a new filter; an invalid one is reported and the old one kept.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        self.filter.reload(filter).map_err(|e| e.to_string())
    }
}

/// Installs the global subscriber writing to stdout; keep the guard until exit.
///
/// `RUST_LOG`, when set, overrides the configured level (handy when debugging).
pub fn init(config: &LoggingConfig) -> Result<(LogLevelHandle, LogGuard), String> {
    init_with_tracer(config, None)
}

/// [`init`], and with a `tracer` (`observability.tracing`), this crate's spans are also
/// handed to OpenTelemetry; the level then filters the log lines only (a
/// per-layer filter), so `level: warn` still exports every span, and the
/// spans made for the traces alone ([`crate::telemetry::otel::SPAN_TARGET`])
/// never become a log line's `span`.
pub fn init_with_tracer(
    config: &LoggingConfig,
    tracer: Option<opentelemetry_sdk::trace::SdkTracer>,
) -> Result<(LogLevelHandle, LogGuard), String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives),
        _ => EnvFilter::try_new(&config.level),
    }
    .map_err(|e| format!("invalid log level: {e}"))?;
    let (filter, handle) = reload::Layer::new(filter);
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("yatagarasu-log")
        .finish(std::io::stdout());
    let dropped = writer.error_counter();
    if let Some(tracer) = tracer {
        let hide = Targets::new()
            .with_default(LevelFilter::TRACE)
            .with_target(crate::telemetry::otel::SPAN_TARGET, LevelFilter::OFF);
        let lines: Box<dyn Layer<Registry> + Send + Sync> = match config.format {
            LogFormat::Json => json_layer(writer).boxed(),
            LogFormat::Text => text_layer(writer).boxed(),
        };
        tracing_subscriber::registry()
            .with(lines.with_filter(filter.and(hide)))
            .with(crate::telemetry::otel::layer(tracer))
            .try_init()
            .map_err(|e| e.to_string())?;
        return Ok((
            LogLevelHandle {
                filter: handle,
                dropped,
            },
            LogGuard { _writer: guard },
        ));
    }
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry.with(json_layer(writer)).try_init(),
        LogFormat::Text => registry.with(text_layer(writer)).try_init(),
    };
    result.map_err(|e| e.to_string())?;
    Ok((
        LogLevelHandle {
            filter: handle,
            dropped,
        },
        LogGuard { _writer: guard },
    ))
}

/// The `logging.format: json` layer: one flat object per event, with the
/// current span (the request's, with its id).
fn json_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
}

/// The `logging.format: text` layer: one line per event, no colours, and
/// every field (message, event and span fields) through `EscapedFields`.
fn text_layer<S, W>(writer: W) -> impl Layer<S>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false)
        .fmt_fields(escape::EscapedFields::default())
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects what the layer writes.
    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Failure;

    impl std::fmt::Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bad\nthing\r\n2026-01-01T00:00:00Z  INFO forged")
        }
    }

    impl std::error::Error for Failure {}

    #[test]
    fn text_events_stay_on_one_line_whatever_the_fields_hold() {
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(text_layer(capture.clone()));
        let forged = "x\n2026-01-01T00:00:00.000000Z  INFO access: request finished status=200";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", request_id = %"id\r\nspan");
            let _entered = span.enter();
            tracing::warn!(s3_message = %forged, debug = ?forged, plain = forged, "S3 said {forged}");
            let error: &(dyn std::error::Error + 'static) = &Failure;
            tracing::warn!(error, escape = %"\u{1b}[2J", "second");
        });
        let output = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = output.lines().collect();
        assert_eq!(lines.len(), 2, "{output}");
        assert!(
            lines[0].contains("request{request_id=id\\r\\nspan}"),
            "{output}"
        );
        assert!(lines[0].contains("S3 said x\\n2026-01-01"), "{output}");
        assert!(lines[0].contains("s3_message=x\\n2026-01-01"), "{output}");
        assert!(lines[1].contains("error=bad\\nthing\\r\\n2026"), "{output}");
        assert!(lines[1].contains("escape=\\u{1b}[2J"), "{output}");
        assert!(
            !output.contains('\u{1b}') && !output.contains('\r'),
            "{output}"
        );
    }
}
