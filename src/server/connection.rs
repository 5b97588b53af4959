//! Serving one accepted connection under its deadlines.
//!
//! hyper bounds a request head only once it starts parsing one, and
//! hyper-util's auto builder first reads up to 24 bytes to tell HTTP/2's
//! preface from HTTP/1.1 with no timer at all: a client that sends nothing,
//! `P`, or the bare h2 preface held a connection slot forever. HTTP/2 has no
//! idle timeout either. So every connection runs under a watchdog that keeps
//! one timer and reads [`Activity`] only when it fires:
//!
//! - no request within `header_read_timeout` of the accept: the connection is
//!   dropped (both protocols; for HTTP/2, the first stream);
//! - nothing in flight for `idle_timeout` after the last response: the
//!   connection is closed gracefully (HTTP/2 gets a GOAWAY). A response still
//!   being sent, however long, keeps it open;
//! - once closing (idle, or the process is stopping), a peer that does not
//!   let the close finish within `header_read_timeout` is dropped, unless a
//!   request is still in flight.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::activity::{Activity, State, Tracked};
use crate::body::BoxError;
use crate::config::ServerConfig;

/// The deadlines of one listener's connections.
#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    /// From accept to the first request; also how long a close may take.
    pub(super) first_request: Duration,
    /// With nothing in flight, how long a connection stays open.
    pub(super) idle: Duration,
}

impl Timeouts {
    /// The deadlines the server section configures.
    pub(super) fn of(config: &ServerConfig) -> Self {
        Self {
            first_request: config.header_read_timeout,
            idle: config.idle_timeout,
        }
    }
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectionError {
    /// The client made no request in time.
    #[error("no request within {0:?} of accepting the connection")]
    NoRequest(Duration),
    /// The close did not finish in time (a peer that does not read).
    #[error("the connection did not finish closing within {0:?}")]
    CloseTimedOut(Duration),
    /// hyper's own error (I/O, protocol, its header timeout).
    #[error(transparent)]
    Http(BoxError),
}

/// What the watchdog does when its timer fires.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Look again at this instant.
    WaitUntil(Instant),
    /// Close gracefully, idle.
    Close,
    /// Drop the connection now.
    Drop,
}

fn verdict(state: State, closing: bool, now: Instant, accepted: Instant, t: Timeouts) -> Verdict {
    match (state, closing) {
        (State::Busy, _) => Verdict::WaitUntil(now + t.idle),
        (_, true) => Verdict::Drop,
        (State::NeverUsed, false) if now >= accepted + t.first_request => Verdict::Drop,
        // A request may come and go before the next look: look again within `idle`.
        (State::NeverUsed, false) => {
            Verdict::WaitUntil((accepted + t.first_request).min(now + t.idle))
        }
        (State::IdleSince(since), false) if now >= since + t.idle => Verdict::Close,
        (State::IdleSince(since), false) => Verdict::WaitUntil(since + t.idle),
    }
}

/// Serves `stream` (TCP, or TLS over it) with `service` until it ends, a
/// deadline passes, or `stop` changes (then it is closed gracefully).
pub(super) async fn serve<I, S, B>(
    builder: &Builder<TokioExecutor>,
    stream: I,
    service: S,
    timeouts: Timeouts,
    mut stop: watch::Receiver<()>,
) -> Result<(), ConnectionError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let activity: Arc<Activity> = Activity::new();
    let connection = builder.serve_connection(
        TokioIo::new(stream),
        Tracked::new(service, activity.clone()),
    );
    let mut connection = std::pin::pin!(connection);
    let accepted = activity.accepted();
    let mut deadline = accepted + timeouts.first_request.min(timeouts.idle);
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            result = connection.as_mut() => return result.map_err(ConnectionError::Http),
            _ = stop.changed(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = sleep_until(deadline) => {
                let now = Instant::now();
                match verdict(activity.state(), closing, now, accepted, timeouts) {
                    Verdict::WaitUntil(next) => deadline = next,
                    Verdict::Close => {
                        tracing::debug!("closing an idle connection");
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                        deadline = now + timeouts.first_request;
                    }
                    Verdict::Drop if closing => {
                        return Err(ConnectionError::CloseTimedOut(timeouts.first_request));
                    }
                    Verdict::Drop => return Err(ConnectionError::NoRequest(timeouts.first_request)),
                }
            }
        }
    }
}

/// Tells a listener's connections to close and waits for them (the drain).
#[derive(Debug)]
pub(super) struct Drain(watch::Sender<()>);

impl Drain {
    /// A drain with no connections yet.
    pub(super) fn new() -> Self {
        Self(watch::channel(()).0)
    }

    /// The signal one connection watches; the drain waits until it is dropped.
    pub(super) fn watcher(&self) -> watch::Receiver<()> {
        self.0.subscribe()
    }

    /// Tells every connection to close, and waits for them at most `grace`.
    pub(super) async fn wait(self, grace: Duration) {
        let _ = self.0.send(());
        if tokio::time::timeout(grace, self.0.closed()).await.is_err() {
            tracing::warn!(
                ?grace,
                "graceful shutdown timed out; closing remaining connections"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timeouts = Timeouts {
        first_request: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[test]
    fn verdicts() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let v = |state, closing, now| verdict(state, closing, now, t0, T);
        assert_eq!(v(State::Busy, false, at(5)), Verdict::WaitUntil(at(65)));
        assert_eq!(
            v(State::Busy, true, at(5)),
            Verdict::WaitUntil(at(65)),
            "a request in flight is never cut"
        );
        assert_eq!(v(State::NeverUsed, false, at(10)), Verdict::Drop);
        assert_eq!(
            v(State::NeverUsed, false, at(9)),
            Verdict::WaitUntil(at(10))
        );
        let short_idle = Timeouts {
            idle: Duration::from_secs(2),
            ..T
        };
        assert_eq!(
            verdict(State::NeverUsed, false, at(1), t0, short_idle),
            Verdict::WaitUntil(at(3)),
            "looks again within the idle timeout"
        );
        let idle = State::IdleSince(at(1));
        assert_eq!(v(idle, false, at(20)), Verdict::WaitUntil(at(61)));
        assert_eq!(v(idle, false, at(61)), Verdict::Close);
        assert_eq!(v(idle, true, at(61)), Verdict::Drop);
    }
}
