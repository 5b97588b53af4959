//! The per-target circuit breaker (`buckets[i].s3.circuit_breaker`).
//!
//! One [`Breaker`] per S3 target: the bucket's own `s3` block (target
//! `primary`) and, with replicas, each replica. It sits just above the S3
//! request and signing layers, under retries, so every try counts.
//!
//! - **Closed**: requests go through. Consecutive failures ([`Failure`]:
//!   connect errors, timeouts, protocol errors, 500/502/503/504, `SlowDown`;
//!   never a 4xx, which proves the target answers) are counted; a success
//!   resets the count; `failure_threshold` of them open the breaker.
//! - **Open**: requests get [`ProxyError::CircuitOpen`] (503 with
//!   `Retry-After`) at once, and S3 is not asked.
//! - **Half-open**: after `timeout_seconds`, up to `half_open_max_requests`
//!   probes at once go through; `success_threshold` successful probes close
//!   it, a failed one opens it again.
//!
//! A request's outcome is known when its response *body* ends (the permit
//! rides in the response body): a body that breaks mid-stream is a failure, a
//! body the client drops early teaches nothing. State outlives reloads for a
//! target whose endpoint, bucket, region, credentials and breaker settings
//! are unchanged ([`BreakerRegistry`], committed through
//! [`crate::build::Staging`], so a rejected build changes nothing).
//!
//! Metrics: `yatagarasu_circuit_breaker_state{bucket,replica}` (0 closed,
//! 1 half-open, 2 open) and `yatagarasu_circuit_breaker_transitions_total{bucket,replica,to}`.
//!
//! [`ProxyError::CircuitOpen`]: crate::error::ProxyError::CircuitOpen

mod body;
pub mod config;
mod layer;
mod outcome;
mod registry;
mod service;
mod state;

pub use config::BreakerConfig;
pub use layer::CircuitBreakerLayer;
pub use outcome::Failure;
pub use registry::BreakerRegistry;
pub use service::{CircuitBreaker, ResponseFuture};
pub use state::{Breaker, Permit, State};
