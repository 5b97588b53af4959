//! The slow-request log: one WARN line (target `slow_request`) for a request
//! whose last byte left later than `observability.slow_query.threshold_ms`
//! after it arrived, with the time in each phase when `include_breakdown`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::config::SlowQueryConfig;
use super::phase::{Phase, PhaseTimes};

static SETTINGS: OnceLock<SlowQueryConfig> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns the slow log on for the process (fixed at start; a later call is ignored).
pub fn configure(config: Option<SlowQueryConfig>) {
    if let Some(config) = config
        && SETTINGS.set(config).is_ok()
    {
        ENABLED.store(true, Ordering::Relaxed);
    }
}

/// Whether the slow log is on: the layers time their phases only then.
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The settings, while the slow log is on.
pub fn settings() -> Option<&'static SlowQueryConfig> {
    if enabled() { SETTINGS.get() } else { None }
}

/// What the slow log line says about one finished request.
#[derive(Debug)]
pub struct SlowRequest<'a> {
    /// The request id (also in the line's span).
    pub request_id: Option<&'a str>,
    /// The method.
    pub method: &'a str,
    /// The path, without the query.
    pub path: &'a str,
    /// The bucket's name, or `none`.
    pub bucket: &'a str,
    /// The status sent.
    pub status: u16,
    /// Arrival to last byte.
    pub elapsed: Duration,
    /// Arrival to the response head (the rest is streaming).
    pub head_after: Option<Duration>,
    /// The time in each phase.
    pub phases: &'a PhaseTimes,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Writes the line for `request` if it was slower than the threshold.
pub fn report(request: &SlowRequest<'_>) {
    let Some(settings) = settings() else {
        return;
    };
    if request.elapsed <= settings.threshold {
        return;
    }
    let common = (
        request.request_id.unwrap_or("-"),
        ms(request.elapsed),
        settings.threshold.as_millis() as u64,
    );
    if !settings.include_breakdown {
        tracing::warn!(
            target: "slow_request",
            request_id = common.0, method = request.method, path = request.path,
            bucket = request.bucket, status = request.status, duration_ms = common.1,
            threshold_ms = common.2, "slow request"
        );
        return;
    }
    let streaming = request
        .head_after
        .map_or(Duration::ZERO, |head| request.elapsed.saturating_sub(head));
    let phases = request.phases;
    tracing::warn!(
        target: "slow_request",
        request_id = common.0, method = request.method, path = request.path,
        bucket = request.bucket, status = request.status, duration_ms = common.1,
        threshold_ms = common.2,
        auth_ms = ms(phases.get(Phase::Auth)),
        authz_ms = ms(phases.get(Phase::Authz)),
        cache_ms = ms(phases.get(Phase::Cache)),
        s3_headers_ms = ms(phases.get(Phase::S3Headers)),
        streaming_ms = ms(streaming),
        "slow request"
    );
}
