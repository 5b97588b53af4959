//! Liveness (`/health`) and readiness (`/ready`) on the main listener.
//!
//! Readiness is computed from background probes (a signed HeadBucket per
//! bucket, every `readiness_probe_interval_seconds`), never per request, so a
//! load balancer hammering `/ready` costs S3 nothing. Shutdown flips it to 503.
//!
//! A bucket with replicas is probed replica by replica; its `state` is
//! `ready` (its first replica answers), `degraded` (the first is down,
//! another one serves) or `unhealthy` (none answers), and each replica's own
//! result is listed under `replicas`. `/ready` answers 200 while every bucket
//! can serve (`ready` or `degraded`, so `up: true`) and every private
//! bucket's keys are loaded; 503 when a bucket is `unhealthy`, keys are
//! missing, or the process is shutting down.

mod layer;
mod probe;
mod readiness;
mod service;

pub use layer::HealthLayer;

/// The liveness probe's path.
pub const HEALTH_PATH: &str = "/health";
/// The readiness probe's path.
pub const READY_PATH: &str = "/ready";

/// Whether `path` is one of the probes this module answers.
pub fn is_probe_path(path: &str) -> bool {
    path == HEALTH_PATH || path == READY_PATH
}
pub use probe::{probe_backend, run_probes};
pub use readiness::{KeyStatus, ProbeResult, Readiness, TargetState};
pub use service::Health;
