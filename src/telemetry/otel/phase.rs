//! The phases of a request (auth, authz, cache lookup, waiting for S3's
//! headers): a child span of the request span when the request is sampled
//! (see [`super::child`]), and the time spent, added to the request's
//! [`PhaseTimes`] while the slow log is on. With tracing and the slow log
//! off, a [`PhaseTimer`] is two relaxed loads and no clock read.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Request;
use pin_project_lite::pin_project;
use tokio::time::Instant;
use tracing::Span;

use crate::access_log::SharedLogContext;

/// One part of a request's time, as the slow log breaks it down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Verifying the token.
    Auth,
    /// The policy decision.
    Authz,
    /// Looking the object up in the cache tiers.
    Cache,
    /// From sending to S3 to its response headers (every attempt).
    S3Headers,
}

/// Time spent in each [`Phase`] by one request, filled by the layers.
#[derive(Debug, Default)]
pub struct PhaseTimes {
    nanos: [AtomicU64; 4],
}

impl PhaseTimes {
    /// Adds `spent` to `phase`.
    pub fn add(&self, phase: Phase, spent: Duration) {
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.nanos[phase as usize].fetch_add(nanos, Ordering::Relaxed);
    }

    /// The time spent in `phase` so far.
    pub fn get(&self, phase: Phase) -> Duration {
        Duration::from_nanos(self.nanos[phase as usize].load(Ordering::Relaxed))
    }
}

/// A phase in progress: its span (or none) and its start (or none).
/// Dropping it ends both.
#[derive(Debug)]
pub struct PhaseTimer {
    span: Span,
    clock: Option<(Instant, SharedLogContext)>,
    phase: Phase,
}

impl PhaseTimer {
    /// Starts `phase` of `request`; `make_span` runs only when the request
    /// is sampled (the current span is exported).
    #[inline]
    pub fn start<B>(phase: Phase, request: &Request<B>, make_span: impl FnOnce() -> Span) -> Self {
        let clock = if super::slow::enabled() {
            (request.extensions().get::<SharedLogContext>()).map(|c| (Instant::now(), c.clone()))
        } else {
            None
        };
        Self {
            span: super::child(make_span),
            clock,
            phase,
        }
    }

    /// Runs `f` inside the phase's span.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        self.span.in_scope(f)
    }

    /// The phase's span (disabled while tracing is off).
    pub fn span(&self) -> &Span {
        &self.span
    }

    /// Ends the phase when `future` completes (or is dropped), polling it
    /// inside the phase's span.
    pub fn wrap<F: Future>(self, future: F) -> Timed<F> {
        Timed {
            inner: future,
            timer: Some(self),
        }
    }
}

impl Drop for PhaseTimer {
    fn drop(&mut self) {
        if let Some((start, context)) = &self.clock {
            context.phases().add(self.phase, start.elapsed());
        }
    }
}

pin_project! {
    /// A future timed as one [`Phase`] (see [`PhaseTimer::wrap`]).
    pub struct Timed<F> {
        #[pin]
        inner: F,
        timer: Option<PhaseTimer>,
    }
}

impl<F> std::fmt::Debug for Timed<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timed")
            .field("timer", &self.timer)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Timed<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let polled = match this.timer {
            Some(timer) => timer.span.in_scope(|| this.inner.poll(cx)),
            None => this.inner.poll(cx),
        };
        if polled.is_ready() {
            this.timer.take();
        }
        polled
    }
}
