//! `tracing` subscriber setup: JSON or text, level from the configuration.
//!
//! The filter sits behind a reload handle so a config reload can change the
//! level without a restart; the format is fixed at start.

use tracing_subscriber::{
    EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
};

use crate::config::{LogFormat, LoggingConfig};

/// Changes the log level of the running process (used by hot reload).
#[derive(Debug, Clone)]
pub struct LogLevelHandle(reload::Handle<EnvFilter, Registry>);

impl LogLevelHandle {
    /// Applies a new filter; an invalid one is reported and the old one kept.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        self.0.reload(filter).map_err(|e| e.to_string())
    }
}

/// Installs the global subscriber writing to stdout.
///
/// `RUST_LOG`, when set, overrides the configured level (handy when debugging).
pub fn init(config: &LoggingConfig) -> Result<LogLevelHandle, String> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(directives),
        _ => EnvFilter::try_new(&config.level),
    }
    .map_err(|e| format!("invalid log level: {e}"))?;
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let result = match config.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_ansi(false))
            .try_init(),
    };
    result.map_err(|e| e.to_string())?;
    Ok(LogLevelHandle(handle))
}
