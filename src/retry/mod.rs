//! Retries of idempotent reads against a failing target (`buckets[i].s3.retry`).
//!
//! Built on `tower::retry` with [`RetryPolicy`], outside the target's
//! circuit breaker so each try is judged by it:
//!
//! - only GET and HEAD, only after a connect error, a timeout, a protocol
//!   error before the response head, 500/502/503/504 or `SlowDown`; never
//!   after a 4xx, never on an open breaker (a failover moves on instead);
//! - never once the response head was returned: a body that breaks later is
//!   passed on as an aborted transfer, never retried nor cut short cleanly;
//! - at most `max_attempts` tries, the first included;
//! - waits with exponential backoff and full jitter ([`backoff`]): the
//!   ceiling starts at `initial_backoff_ms`, doubles, stops at `max_backoff_ms`;
//! - bounded by the bucket's [`budget`]: retries may add at most
//!   `budget_percent` of the recent requests, plus a reserve of 10 per
//!   second, so a backend down for everyone gets little more than the
//!   requests themselves.
//!
//! Metrics: `yatagarasu_upstream_retries_total{bucket,reason}` and
//! `yatagarasu_retry_budget_exhausted_total{bucket}`.

pub mod backoff;
pub mod budget;
pub mod config;
mod policy;

pub use budget::bucket_budget;
pub use config::RetryConfig;
pub use policy::RetryPolicy;

/// The retry layer of one target, as [`crate::stack`] mounts it.
pub type RetryLayer = tower::retry::RetryLayer<RetryPolicy>;
