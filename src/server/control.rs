use std::sync::Arc;

use super::tls::TlsState;
use crate::Proxy;
use crate::config::{Config, ConfigErrors};
use crate::telemetry::logging::LogLevelHandle;

/// Produces a fresh, validated configuration (reads the file again).
pub type ConfigLoader = Arc<dyn Fn() -> Result<Config, ConfigErrors> + Send + Sync>;

/// Why a reload did not happen; the old configuration keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new configuration is invalid.
    #[error("invalid configuration:\n{0}")]
    Invalid(ConfigErrors),
    /// The new configuration is valid but the stack could not be built.
    #[error("cannot build the new configuration: {0}")]
    Build(#[from] crate::build::BuildError),
    /// There is nothing to reload from (the proxy was started without a file).
    #[error("this process has no configuration source to reload from")]
    NoSource,
    /// The reload's blocking task panicked or was cancelled (the runtime is
    /// shutting down); whether the new generation was swapped in is in the log.
    #[error("the reload task did not finish: {0}")]
    Interrupted(#[from] tokio::task::JoinError),
}

/// The reload entry point shared by SIGHUP and the admin API.
pub struct Control {
    /// The proxy whose stack is swapped.
    pub proxy: Proxy,
    loader: Option<ConfigLoader>,
    log_level: Option<LogLevelHandle>,
    /// The main listener's TLS, given the new certificate on each reload.
    tls: Option<Arc<TlsState>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

impl Control {
    /// Wraps a proxy with its configuration source.
    pub fn new(
        proxy: Proxy,
        loader: Option<ConfigLoader>,
        log_level: Option<LogLevelHandle>,
    ) -> Self {
        Self {
            proxy,
            loader,
            log_level,
            tls: None,
        }
    }

    /// Reloads also replace the main listener's TLS settings.
    pub(crate) fn with_tls(mut self, tls: Option<Arc<TlsState>>) -> Self {
        self.tls = tls;
        self
    }

    /// The handle that changes the log level, when logging is the binary's.
    pub fn log_level(&self) -> Option<&LogLevelHandle> {
        self.log_level.as_ref()
    }

    /// Loads, validates, builds and swaps in the configuration; logs the outcome.
    ///
    /// The whole reload (reading files, compiling policies, resolving names,
    /// building the stack) runs on tokio's blocking pool, so the threads
    /// serving requests keep serving while it runs. Reloads are serialised by
    /// [`Proxy::reload`]. Dropping the returned future does not cancel the
    /// reload: it completes and logs its outcome.
    pub async fn reload(&self) -> Result<u64, ReloadError> {
        let Some(loader) = self.loader.clone() else {
            return log_outcome(Err(ReloadError::NoSource));
        };
        let job = ReloadJob {
            proxy: self.proxy.clone(),
            loader,
            log_level: self.log_level.clone(),
            tls: self.tls.clone(),
        };
        match tokio::task::spawn_blocking(move || log_outcome(job.run())).await {
            Ok(result) => result,
            Err(join) => log_outcome(Err(ReloadError::Interrupted(join))),
        }
    }
}

/// Logs how a reload ended and passes the result on.
fn log_outcome(result: Result<u64, ReloadError>) -> Result<u64, ReloadError> {
    match &result {
        Ok(generation) => tracing::info!(generation, "configuration reloaded"),
        Err(error) => tracing::error!(error = %error, "configuration reload failed"),
    }
    result
}

/// What a reload needs, moved onto a blocking thread.
struct ReloadJob {
    proxy: Proxy,
    loader: ConfigLoader,
    log_level: Option<LogLevelHandle>,
    tls: Option<Arc<TlsState>>,
}

impl ReloadJob {
    /// Load → validate → build → swap, then the log level. Blocks: it reads
    /// files, compiles policies and resolves names.
    fn run(self) -> Result<u64, ReloadError> {
        let config = match (self.loader)() {
            Ok(config) => config,
            Err(errors) => {
                self.proxy.record_failed_reload();
                return Err(ReloadError::Invalid(errors));
            }
        };
        warn_restart_only_changes(&self.proxy.config(), &config);
        let level = config.logging.level.clone();
        let https = config.server.https.clone();
        let generation = self.proxy.reload(config)?;
        // The files were read and checked with the configuration: a bad
        // certificate failed the reload above and the old one stays.
        if let (Some(tls), Some(https)) = (&self.tls, &https) {
            tls.replace(&https.loaded);
        }
        // Only once the new generation is in force, so a failed reload changes nothing.
        if let Some(handle) = &self.log_level
            && let Err(e) = handle.set_level(&level)
        {
            tracing::warn!(error = %e, "log level not changed");
        }
        Ok(generation)
    }
}

/// Settings bound at start (listeners, connection limits, log format) cannot
/// change in a running process; say so rather than silently ignore them.
fn warn_restart_only_changes(old: &Config, new: &Config) {
    let mut changed = Vec::new();
    if old.server.address != new.server.address {
        changed.push("server.address");
    }
    if old.admin.address != new.admin.address {
        changed.push("admin.address");
    }
    if old.metrics.address != new.metrics.address || old.metrics.enabled != new.metrics.enabled {
        changed.push("metrics");
    }
    if old.server.max_connections != new.server.max_connections {
        changed.push("server.max_connections");
    }
    if old.server.header_read_timeout != new.server.header_read_timeout {
        changed.push("server.header_read_timeout_seconds");
    }
    if old.server.max_concurrent_requests != new.server.max_concurrent_requests {
        changed.push("server.max_concurrent_requests");
    }
    if old.server.max_header_bytes != new.server.max_header_bytes {
        changed.push("server.max_header_bytes");
    }
    if old.server.idle_timeout != new.server.idle_timeout {
        changed.push("server.idle_timeout_seconds");
    }
    if old.server.http2_max_concurrent_streams != new.server.http2_max_concurrent_streams {
        changed.push("server.http2_max_concurrent_streams");
    }
    if old.server.worker_threads != new.server.worker_threads {
        changed.push("server.worker_threads");
    }
    let plain = |c: &Config| c.server.https.as_ref().map(|h| h.plain_address);
    if plain(old) != plain(new) {
        changed.push("server.https.enabled/plain_address");
    }
    if old.logging.format != new.logging.format {
        changed.push("logging.format");
    }
    if !changed.is_empty() {
        tracing::warn!(
            settings = changed.join(", "),
            "these settings changed but need a restart to take effect; the running values are kept"
        );
    }
}
