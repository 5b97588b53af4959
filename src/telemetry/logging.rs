//! `tracing` subscriber setup: JSON or text, level from the configuration.
//!
//! The filter sits behind a reload handle so a config reload can change the
//! level without a restart; the format is fixed at start. Lines are written by
//! a dedicated thread (`tracing-appender`'s non-blocking writer), so a slow
//! stdout never stalls a request; when its queue is full, lines are dropped
//! and counted rather than blocking.

use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{
    EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
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
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(false),
            )
            .try_init(),
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
