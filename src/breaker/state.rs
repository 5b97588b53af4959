//! One target's breaker: its state machine and the permit a request holds.
//!
//! Closed is the hot path: admitting a request is one atomic load, and a
//! success one more (a store only when failures were counted). Opening,
//! half-opening and closing happen under a small mutex, which also holds the
//! half-open bookkeeping; only requests that find the breaker not closed take it.

use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use metrics::SharedString;
use tokio::time::Instant;

use super::BreakerConfig;
use super::outcome::Outcome;
use crate::telemetry::metrics::{CIRCUIT_BREAKER_STATE, CIRCUIT_BREAKER_TRANSITIONS_TOTAL};

/// A breaker's state, as the `yatagarasu_circuit_breaker_state` gauge shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Requests go through; consecutive failures are counted.
    Closed = 0,
    /// Up to `half_open_max_requests` probes at once go through.
    HalfOpen = 1,
    /// Requests are refused without touching S3.
    Open = 2,
}

impl State {
    fn from_u8(n: u8) -> State {
        match n {
            0 => State::Closed,
            1 => State::HalfOpen,
            _ => State::Open,
        }
    }

    /// The `to` label of a transition.
    pub fn label(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::HalfOpen => "half_open",
            State::Open => "open",
        }
    }
}

/// The circuit breaker of one S3 target (a bucket's own s3 block, or a replica).
///
/// Shared by every generation whose target and settings are unchanged (see
/// [`super::BreakerRegistry`]).
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerConfig,
    /// [`State`] as a byte: read without the lock on every request.
    state: AtomicU8,
    /// Consecutive failures while closed.
    failures: AtomicU32,
    transitions: Mutex<Transitions>,
    bucket: SharedString,
    target: SharedString,
}

/// What only a transition or a probe reads or writes.
#[derive(Debug)]
struct Transitions {
    opened_at: Instant,
    /// Probes admitted and not finished, in this half-open period.
    probes: u32,
    /// Successful probes in this half-open period.
    successes: u32,
    /// Counts half-open periods, so a probe of an earlier one is ignored.
    period: u64,
}

impl Breaker {
    /// A closed breaker for `target` of `bucket` (the metric labels).
    pub fn new(settings: BreakerConfig, bucket: &str, target: &str) -> Self {
        Self {
            settings,
            state: AtomicU8::new(State::Closed as u8),
            failures: AtomicU32::new(0),
            transitions: Mutex::new(Transitions {
                opened_at: Instant::now(),
                probes: 0,
                successes: 0,
                period: 0,
            }),
            bucket: SharedString::from(bucket.to_owned()),
            target: SharedString::from(target.to_owned()),
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Publishes the state gauge: called when the breaker goes live.
    pub(crate) fn publish(&self) {
        self.gauge(self.state());
    }

    /// Lets a request through with a permit, or says how long until a probe may go.
    pub(crate) fn admit(self: &Arc<Self>) -> Result<Permit, Duration> {
        if self.state() == State::Closed {
            return Ok(Permit::new(self.clone(), None));
        }
        self.admit_not_closed()
    }

    fn admit_not_closed(self: &Arc<Self>) -> Result<Permit, Duration> {
        let mut t = self.lock();
        match self.state() {
            State::Closed => return Ok(Permit::new(self.clone(), None)),
            State::Open => {
                let now = Instant::now();
                let reopens = t.opened_at + self.settings.timeout;
                if now < reopens {
                    return Err(reopens - now);
                }
                t.period += 1;
                t.probes = 0;
                t.successes = 0;
                self.enter(State::HalfOpen);
            }
            State::HalfOpen => {}
        }
        if t.probes >= self.settings.half_open_max_requests {
            // The probes in flight decide soon.
            return Err(Duration::from_secs(1));
        }
        t.probes += 1;
        Ok(Permit::new(self.clone(), Some(t.period)))
    }

    /// Records what a request learnt; `probe` is its half-open period, if it was a probe.
    fn record(&self, probe: Option<u64>, outcome: Outcome) {
        match (probe, outcome) {
            (Some(period), _) => self.record_probe(period, outcome),
            (None, Outcome::Success) => {
                // A store only when there is something to reset: no shared
                // cache line is written by a healthy target's requests.
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
            }
            (None, Outcome::Failure) => {
                if self.state() != State::Closed {
                    return;
                }
                let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                if failures >= self.settings.failure_threshold {
                    let mut t = self.lock();
                    if self.state() == State::Closed {
                        self.open(&mut t);
                    }
                }
            }
            (None, Outcome::Unknown) => {}
        }
    }

    fn record_probe(&self, period: u64, outcome: Outcome) {
        let mut t = self.lock();
        if self.state() != State::HalfOpen || t.period != period {
            return;
        }
        t.probes = t.probes.saturating_sub(1);
        match outcome {
            Outcome::Success => {
                t.successes += 1;
                if t.successes >= self.settings.success_threshold {
                    self.failures.store(0, Ordering::Relaxed);
                    self.enter(State::Closed);
                }
            }
            Outcome::Failure => self.open(&mut t),
            Outcome::Unknown => {}
        }
    }

    fn open(&self, t: &mut Transitions) {
        t.opened_at = Instant::now();
        self.failures.store(0, Ordering::Relaxed);
        self.enter(State::Open);
    }

    /// Moves to `to` (under the lock) and reports it.
    fn enter(&self, to: State) {
        self.state.store(to as u8, Ordering::Release);
        self.gauge(to);
        metrics::counter!(
            CIRCUIT_BREAKER_TRANSITIONS_TOTAL,
            "bucket" => self.bucket.clone(),
            "replica" => self.target.clone(),
            "to" => to.label()
        )
        .increment(1);
        tracing::warn!(
            bucket = %self.bucket,
            replica = %self.target,
            state = to.label(),
            "circuit breaker state changed"
        );
    }

    fn gauge(&self, state: State) {
        metrics::gauge!(
            CIRCUIT_BREAKER_STATE,
            "bucket" => self.bucket.clone(),
            "replica" => self.target.clone()
        )
        .set(f64::from(state as u8));
    }

    fn lock(&self) -> MutexGuard<'_, Transitions> {
        self.transitions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A request's ticket through the breaker: it reports the request's outcome
/// once, and "nothing learnt" if dropped unreported (so a probe's slot
/// is always given back).
#[derive(Debug)]
pub struct Permit {
    breaker: Arc<Breaker>,
    /// The half-open period, when this request is a probe.
    probe: Option<u64>,
    reported: bool,
}

impl Permit {
    fn new(breaker: Arc<Breaker>, probe: Option<u64>) -> Self {
        Self {
            breaker,
            probe,
            reported: false,
        }
    }

    /// Reports the request's outcome.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.report(outcome);
    }

    fn report(&mut self, outcome: Outcome) {
        if !self.reported {
            self.reported = true;
            self.breaker.record(self.probe, outcome);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.report(Outcome::Unknown);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, successes: u32, probes: u32) -> Arc<Breaker> {
        Arc::new(Breaker::new(
            BreakerConfig {
                failure_threshold: failures,
                success_threshold: successes,
                timeout: Duration::from_secs(10),
                half_open_max_requests: probes,
            },
            "b",
            "primary",
        ))
    }

    fn fail(b: &Arc<Breaker>) {
        b.admit().unwrap().finish(Outcome::Failure);
    }

    #[tokio::test(start_paused = true)]
    async fn consecutive_failures_open_it_and_a_success_resets_the_count() {
        let b = breaker(3, 1, 1);
        fail(&b);
        fail(&b);
        b.admit().unwrap().finish(Outcome::Success);
        fail(&b);
        fail(&b);
        assert_eq!(b.state(), State::Closed);
        fail(&b);
        assert_eq!(b.state(), State::Open);
        let wait = b.admit().unwrap_err();
        assert_eq!(wait, Duration::from_secs(10));
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(b.admit().unwrap_err(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn half_open_admits_limited_probes_and_closes_after_successes() {
        let b = breaker(1, 2, 2);
        fail(&b);
        tokio::time::advance(Duration::from_secs(10)).await;
        let first = b.admit().unwrap();
        assert_eq!(b.state(), State::HalfOpen);
        let second = b.admit().unwrap();
        assert!(b.admit().is_err(), "only two probes at once");
        first.finish(Outcome::Success);
        assert_eq!(b.state(), State::HalfOpen);
        let third = b.admit().unwrap();
        second.finish(Outcome::Success);
        assert_eq!(b.state(), State::Closed);
        // A probe of a finished period changes nothing.
        third.finish(Outcome::Failure);
        assert_eq!(b.state(), State::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_and_an_abandoned_one_frees_its_slot() {
        let b = breaker(1, 1, 1);
        fail(&b);
        tokio::time::advance(Duration::from_secs(10)).await;
        drop(b.admit().unwrap());
        assert_eq!(b.state(), State::HalfOpen);
        b.admit().unwrap().finish(Outcome::Failure);
        assert_eq!(b.state(), State::Open);
        assert_eq!(b.admit().unwrap_err(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_failure_while_open_changes_nothing() {
        let b = breaker(1, 1, 1);
        let late = b.admit().unwrap();
        fail(&b);
        tokio::time::advance(Duration::from_secs(4)).await;
        late.finish(Outcome::Failure);
        assert_eq!(b.admit().unwrap_err(), Duration::from_secs(6));
    }
}
