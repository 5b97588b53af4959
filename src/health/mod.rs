//! Liveness (`/health`) and readiness (`/ready`) on the main listener.
//!
//! Readiness is computed from background probes (a signed HeadBucket per
//! bucket, every `readiness_probe_interval_seconds`), never per request, so a
//! load balancer hammering `/ready` costs S3 nothing. Shutdown flips it to 503.

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
pub use readiness::{KeyStatus, ProbeResult, Readiness};
pub use service::Health;
