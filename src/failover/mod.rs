//! Replica failover: a bucket served by several S3 targets in priority order.
//!
//! `buckets[i].s3.replicas` lists the targets (original Yatagarasu keys);
//! each has its own backend (endpoint, region, credentials, signature memo),
//! its own request timeout and its own stack (`crate::stack::target_stack`,
//! where the breaker and retries of that target live). [`Failover`] sends a
//! GET or HEAD to the first target and moves on to the next only when the
//! outcome says the target, not the object, is the problem
//! ([`is_retriable`]): connect errors, timeouts, protocol errors before the
//! response head, S3 500/502/503/504 and `SlowDown`, and an open circuit
//! breaker. A 403, 404, 412, 416 or any other 4xx is the answer, from the
//! first target that gave it. At most `replicas - 1` failovers happen per
//! request; each is counted in `yatagarasu_replica_failovers_total{bucket,from,to}`.
//!
//! Once a target has answered with a response head, the request is that
//! target's: a body that breaks later is never resent elsewhere.
//!
//! - `config`: the `replicas` keys and their validation.
//! - `classify`: which outcomes move on to the next target.
//! - `service`: [`Failover`], the service over the targets.

mod classify;
pub mod config;
mod service;

pub use classify::is_retriable;
pub use service::{Failover, Target};
