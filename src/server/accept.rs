//! The accept loop every listener (main, admin, metrics) runs.
//!
//! - A connection cap: each accepted connection takes a slot before it is
//!   served. Over the cap the loop holds the one it accepted until a
//!   connection ends and accepts no more, so further clients wait in the
//!   kernel's accept queue (which costs the process no descriptor). A slot
//!   is never held by an idle loop, so listeners sharing a cap (main and
//!   plain) serve exactly the cap between them. Reaching it is logged.
//! - The descriptor reserve ([`super::descriptors`]): a connection whose
//!   descriptor is too close to the open-file limit is closed at once.
//! - `accept` errors: a failed handshake (`ECONNABORTED` …) is skipped;
//!   anything else, `EMFILE` above all, backs off from 10 ms up to 1 s, since
//!   the pending connection keeps the listener readable and retrying at once
//!   would spin.
//!
//! - Open connections are counted in
//!   `yatagarasu_client_connections_open{listener}` for as long as their slot
//!   is held.
//!
//! Warnings are logged at most once per [`WARN_EVERY`] per listener and kind.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

use super::descriptors::{Share, too_close_to_limit};
use crate::telemetry::metrics::CLIENT_CONNECTIONS_OPEN;

/// Shortest pause after an `accept` error.
const FIRST_BACKOFF: Duration = Duration::from_millis(10);
/// Longest pause after repeated `accept` errors.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one warning of each kind per listener in this time.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// What one listener enforces.
#[derive(Debug, Clone)]
pub(super) struct Limits {
    /// The listener's name in logs (`main`, `admin`, `metrics`).
    pub(super) listener: &'static str,
    /// Connections open at once.
    pub(super) max_connections: usize,
    /// How close to the open-file limit it may take descriptors.
    pub(super) share: Share,
    /// The cap's slots when listeners share one (the main and plain data
    /// listeners share `server.max_connections`); `None`: a cap of its own.
    pub(super) shared: Option<Arc<Semaphore>>,
}

/// A connection's place under its listener's cap, and its mark in the open
/// connections gauge; both are given back when it is dropped (the connection
/// ended).
#[derive(Debug)]
pub(super) struct Slot {
    _permit: OwnedSemaphorePermit,
    open: metrics::Gauge,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, open: &metrics::Gauge) -> Self {
        open.increment(1.0);
        Self {
            _permit: permit,
            open: open.clone(),
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

/// Accepts connections under `limits` until `shutdown` flips; hands each one,
/// with the slot it holds, to `serve` (which must not block).
pub(super) async fn accept_loop<F>(
    listener: TcpListener,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr, Slot),
{
    // Registered before the first connection, so the gauge shows 0, not nothing.
    let open = metrics::gauge!(CLIENT_CONNECTIONS_OPEN, "listener" => limits.listener);
    let mut acceptor = Acceptor {
        slots: (limits.shared.clone())
            .unwrap_or_else(|| Arc::new(Semaphore::new(limits.max_connections))),
        limits,
        warnings: Warnings::default(),
        backoff: FIRST_BACKOFF,
    };
    loop {
        let accepted = tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                acceptor.backoff = FIRST_BACKOFF;
                if !acceptor.admit(&stream) {
                    continue;
                }
                let Some(permit) = acceptor.slot(&mut shutdown).await else {
                    break;
                };
                serve(stream, peer, Slot::new(permit, &open));
            }
            Err(error) => {
                if !acceptor.recover(&error, &mut shutdown).await {
                    break;
                }
            }
        }
    }
}

/// One listener's accept state: its slots, warnings and current back-off.
struct Acceptor {
    slots: Arc<Semaphore>,
    limits: Limits,
    warnings: Warnings,
    backoff: Duration,
}

impl Acceptor {
    /// A slot for the connection just accepted, waiting for one when all are
    /// taken; `None` on shutdown.
    async fn slot(&mut self, shutdown: &mut watch::Receiver<bool>) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        if self.warnings.cap.due() {
            tracing::warn!(
                listener = self.limits.listener,
                limit = self.limits.max_connections,
                "connection limit reached; new connections wait in the accept queue"
            );
        }
        tokio::select! {
            _ = shutdown.changed() => None,
            permit = self.slots.clone().acquire_owned() => permit.ok(),
        }
    }

    /// Whether the accepted `stream` may be served: not if its descriptor is
    /// too close to the open-file limit (it is then closed by the caller's drop).
    fn admit(&mut self, stream: &TcpStream) -> bool {
        if !too_close_to_limit(stream.as_raw_fd(), self.limits.share) {
            return true;
        }
        if self.warnings.descriptors.due() {
            tracing::warn!(
                listener = self.limits.listener,
                "refusing connections: too few file descriptors left \
                 under the open-file limit"
            );
        }
        false
    }

    /// Handles an `accept` error: skips a per-connection one, backs off on
    /// anything else. `false` when shutdown came during the back-off.
    async fn recover(&mut self, error: &io::Error, shutdown: &mut watch::Receiver<bool>) -> bool {
        if is_per_connection(error) {
            tracing::debug!(listener = self.limits.listener, %error, "accept failed");
            return true;
        }
        if self.warnings.accept.due() {
            tracing::warn!(
                listener = self.limits.listener,
                %error,
                "accept failed; backing off"
            );
        }
        tokio::select! {
            _ = shutdown.changed() => return false,
            () = tokio::time::sleep(self.backoff) => {}
        }
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        true
    }
}

/// Errors about one pending connection, not about the listener or the process.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// When each kind of warning was last logged.
#[derive(Debug, Default)]
struct Warnings {
    cap: Throttle,
    descriptors: Throttle,
    accept: Throttle,
}

/// Lets one event through per [`WARN_EVERY`].
#[derive(Debug, Default)]
struct Throttle(Option<Instant>);

impl Throttle {
    fn due(&mut self) -> bool {
        let now = Instant::now();
        let due = self.0.is_none_or(|last| now >= last + WARN_EVERY);
        if due {
            self.0 = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn warnings_are_throttled() {
        let mut throttle = Throttle::default();
        assert!(throttle.due());
        assert!(!throttle.due());
        tokio::time::advance(WARN_EVERY).await;
        assert!(throttle.due());
    }

    #[test]
    fn emfile_is_not_a_per_connection_error() {
        assert!(!is_per_connection(&io::Error::from_raw_os_error(
            rustix::io::Errno::MFILE.raw_os_error()
        )));
        assert!(is_per_connection(&io::Error::from(
            io::ErrorKind::ConnectionAborted
        )));
    }
}
