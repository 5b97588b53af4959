//! The process around the proxy: listeners, signals, reload and shutdown.
//!
//! - `listener`: the main accept loop (HTTP/1.1 and h2c via hyper-util's auto
//!   builder, header-read timeout against slow-loris, connection cap,
//!   graceful drain), TLS on it when `server.https` is enabled, and the same
//!   loop in plain HTTP on `server.https.plain_address`.
//! - `tls`: `server.https`'s files, checked at validation, and the settings
//!   in force for new connections, replaced on reload.
//! - `admin`: the admin API on its own listener (`/admin/reload`,
//!   `/admin/status`, `/admin/cache/*`), behind a gate layer.
//! - `metrics_http`: `GET /metrics` in Prometheus text format.
//! - `control`: what SIGHUP and the admin API share: reload from the source,
//!   on the blocking pool.
//! - `internal`: the admin and metrics listeners' shared serving loop.
//! - `accept`: the accept loop every listener runs (connection cap,
//!   descriptor reserve, back-off on `accept` errors).
//! - `connection`: one connection under its first-request and idle deadlines.
//! - `activity`: the in-flight bookkeeping those deadlines read.
//! - `descriptors`: the open-file limit and the reserve kept below it.

mod accept;
mod activity;
mod admin;
pub mod config;
mod connection;
mod control;
mod descriptors;
mod internal;
mod listener;
mod metrics_http;
mod tls;

pub use control::{ConfigLoader, Control, ReloadError};
pub use tls::TLS_CERTIFICATE_EXPIRY;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use connection::Drain;
use listener::DataListener;
use tls::TlsState;

use crate::Proxy;
use crate::config::Config;
use crate::telemetry::logging::LogLevelHandle;
use crate::telemetry::metrics::LOG_LINES_DROPPED_TOTAL;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The stack could not be built from the configuration.
    #[error("cannot build the proxy: {0}")]
    Build(#[from] crate::build::BuildError),
    /// A listener could not bind its address.
    #[error("cannot listen on {address} ({listener}): {source}")]
    Bind {
        /// Which listener.
        listener: &'static str,
        /// The configured address.
        address: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// What the server needs besides the configuration.
#[derive(Default)]
pub struct ServeOptions {
    /// Re-reads the configuration on SIGHUP and `POST /admin/reload`.
    pub loader: Option<ConfigLoader>,
    /// Applies a new log level on reload.
    pub log_level: Option<LogLevelHandle>,
    /// Renders `/metrics`; without it the metrics listener is not started.
    pub metrics: Option<PrometheusHandle>,
}

impl std::fmt::Debug for ServeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeOptions")
            .field("reloadable", &self.loader.is_some())
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

async fn bind(listener: &'static str, address: SocketAddr) -> Result<TcpListener, ServerError> {
    let bound = TcpListener::bind(address)
        .await
        .map_err(|source| ServerError::Bind {
            listener,
            address,
            source,
        })?;
    let local = bound.local_addr().unwrap_or(address);
    tracing::info!(listener, address = %local, "listening");
    Ok(bound)
}

/// Runs the proxy until SIGTERM or SIGINT, then drains and returns.
pub async fn run(config: Config, options: ServeOptions) -> Result<(), ServerError> {
    // Before anything listens, so a SIGTERM during start-up is a clean stop, not a kill.
    let mut signals = Signals::install()?;
    // Before anything opens descriptors in bulk (cache files, connections).
    descriptors::raise_open_file_limit(config.server.max_connections);
    let proxy = Proxy::builder(config.clone()).build()?;
    let tls = (config.server.https.as_ref()).map(|https| TlsState::new(&https.loaded));
    let control = Arc::new(
        Control::new(proxy.clone(), options.loader, options.log_level).with_tls(tls.clone()),
    );
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let data = bind_data_listeners(&config, tls).await?;
    let tasks = start_side_listeners(&config, options.metrics, &control, &shutdown_rx).await?;
    let probes = proxy.spawn_probes();
    let servers = data
        .into_iter()
        .map(|(bound, kind)| {
            tokio::spawn(listener::serve(
                bound,
                kind,
                proxy.clone(),
                config.server.clone(),
                shutdown_rx.clone(),
            ))
        })
        .collect();

    signals.wait_for_shutdown(&control).await;
    proxy.readiness().begin_shutdown();
    shutdown_delay(proxy.config().server.shutdown_delay, &mut signals).await;
    tracing::info!("shutdown requested; draining in-flight requests");
    let _ = shutdown_tx.send(true);
    drain(
        servers,
        proxy.config().server.graceful_shutdown_timeout,
        &mut signals,
    )
    .await;
    // Every answered request's audit record is written before exiting.
    proxy.flush_audit_log().await;
    probes.abort();
    for task in tasks {
        task.abort();
    }
    tracing::info!("shutdown complete");
    Ok(())
}

/// `server.shutdown_delay_seconds`: `/ready` answers 503 already while the
/// listeners keep accepting and serving, so load balancers that poll it stop
/// sending before any connection is refused. A second signal ends it.
async fn shutdown_delay(delay: Duration, signals: &mut Signals) {
    if delay.is_zero() {
        return;
    }
    tracing::info!(
        delay_seconds = delay.as_secs(),
        "shutdown requested; /ready answers 503, serving on until the shutdown delay ends"
    );
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        () = signals.second_stop() => {
            tracing::info!("second stop signal; the shutdown delay is cut short");
        }
    }
}

/// Binds the main listener (TLS when `tls` is set) and, with TLS, the
/// plain-HTTP one at `server.https.plain_address`.
async fn bind_data_listeners(
    config: &Config,
    tls: Option<Arc<TlsState>>,
) -> Result<Vec<(TcpListener, DataListener)>, ServerError> {
    let main = bind("main", config.server.address).await?;
    // One cap for both: the plain listener does not double the connections.
    let slots = Arc::new(Semaphore::new(config.server.max_connections));
    let mut listeners = vec![(
        main,
        DataListener {
            name: "main",
            tls,
            slots: slots.clone(),
        },
    )];
    if let Some(address) = (config.server.https.as_ref()).and_then(|h| h.plain_address) {
        let plain = bind("plain", address).await?;
        listeners.push((
            plain,
            DataListener {
                name: "plain",
                tls: None,
                slots,
            },
        ));
    }
    Ok(listeners)
}

/// Waits for the data listeners to stop accepting, then for their
/// connections to finish, at most `grace` (or until a second stop signal).
async fn drain(servers: Vec<JoinHandle<Drain>>, grace: Duration, signals: &mut Signals) {
    let mut drains = Vec::new();
    for server in servers {
        match server.await {
            Ok(drained) => drains.push(drained.wait(grace)),
            Err(e) => tracing::error!(error = %e, "listener task failed"),
        }
    }
    tokio::select! {
        _ = futures_util::future::join_all(drains) => {}
        () = signals.second_stop() => {
            tracing::warn!("second stop signal; closing remaining connections now");
        }
    }
}

/// Binds and starts the admin and metrics listeners (when configured) and
/// the dropped-log-lines reporter; returns their tasks, aborted at shutdown.
async fn start_side_listeners(
    config: &Config,
    metrics: Option<PrometheusHandle>,
    control: &Arc<Control>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, ServerError> {
    let mut tasks = Vec::new();
    if let Some(address) = config.admin.address {
        let admin = bind("admin", address).await?;
        tasks.push(tokio::spawn(admin::serve(
            admin,
            control.clone(),
            config.server.clone(),
            shutdown.clone(),
        )));
    }
    if let (true, Some(handle)) = (config.metrics.enabled, metrics) {
        let listener = bind("metrics", config.metrics.address).await?;
        tasks.push(tokio::spawn(metrics_http::serve(
            listener,
            handle,
            config.server.clone(),
            shutdown.clone(),
        )));
    }
    if let (true, Some(log_level)) = (config.metrics.enabled, control.log_level()) {
        tasks.push(tokio::spawn(report_dropped_log_lines(log_level.clone())));
    }
    Ok(tasks)
}

/// Publishes the log writer's dropped-line count as a metric.
async fn report_dropped_log_lines(log_level: LogLevelHandle) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    loop {
        tick.tick().await;
        metrics::counter!(LOG_LINES_DROPPED_TOTAL).absolute(log_level.dropped_lines() as u64);
    }
}

/// The process signals: SIGHUP reloads, SIGTERM/SIGINT stop (a second one
/// during the drain stops at once, as with nginx's fast shutdown).
struct Signals {
    hangup: Signal,
    terminate: Signal,
    interrupt: Signal,
}

impl Signals {
    fn install() -> Result<Self, ServerError> {
        let install = |kind| signal(kind).map_err(ServerError::Signals);
        Ok(Self {
            hangup: install(SignalKind::hangup())?,
            terminate: install(SignalKind::terminate())?,
            interrupt: install(SignalKind::interrupt())?,
        })
    }

    /// Handles SIGHUP (reload) until SIGTERM or SIGINT arrives.
    async fn wait_for_shutdown(&mut self, control: &Control) {
        loop {
            tokio::select! {
                _ = self.hangup.recv() => {
                    tracing::info!("SIGHUP received; reloading the configuration");
                    // For an external logrotate: the audit file is reopened too.
                    control.proxy.reopen_audit_log();
                    // Errors are logged by `reload`; the old configuration keeps
                    // serving. Requests keep flowing: the reload runs off the
                    // runtime's threads.
                    let _ = control.reload().await;
                }
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
            }
        }
    }

    /// Resolves on the next SIGTERM or SIGINT.
    async fn second_stop(&mut self) {
        tokio::select! {
            _ = self.terminate.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}
