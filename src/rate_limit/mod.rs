//! Rate limits: global, per client address, per bucket and per user.
//!
//! Every limit is governor's GCRA (a token bucket kept as one timestamp per
//! key): `requests_per_second` sustained, `burst` at once. A request over a
//! limit is answered at once with 429 ([`ProxyError::RateLimited`], which
//! `error.rs` renders with `Retry-After` and the `RateLimit-*` fields);
//! nothing ever waits for budget, so `poll_ready` only reports the inner
//! service's readiness. Refusals count in
//! `yatagarasu_rate_limited_total{scope,bucket}`.
//!
//! Two layers, in each bucket's stack (`stack.rs`):
//! - [`ClientRateLimitLayer`], after the IP filter and before
//!   authentication, checks the global limit, then the client's address
//!   (the [`ClientIp`] extension; IPv6 by /64), then the bucket's own
//!   (`s3.rate_limit`). Shedding here is cheap: no token is verified for a
//!   refused request.
//! - [`UserRateLimitLayer`], after authorization and before the cache,
//!   keys by the configured claim of the verified token
//!   ([`VerifiedClaims`]); a request without it (anonymous, on a public
//!   bucket) is keyed by its client address at the per-user rate.
//!
//! A bucket with no limit gets neither layer (`option_layer`). The global
//! and per-address limiters are built once per configuration generation
//! and shared by every bucket; a reload keeps every limiter whose settings
//! did not change ([`RateLimits::stage`]), so clients keep their budgets.
//!
//! # Bounded state
//!
//! A keyed limit stores one 8-byte timestamp per key in a
//! [`BoundedStore`]: governor's `StateStore` over a `quick_cache` sized to
//! `max_tracked_ips` keys, a hard bound (a flood of distinct addresses
//! cannot grow memory). `quick_cache` was chosen over governor's DashMap
//! store with a cap and periodic `retain_recent` because:
//! - the bound holds at every instant, with no sweeper task and no
//!   decision about what to do with a new key when the map is full;
//! - its eviction (S3-FIFO-like) keeps keys seen repeatedly and evicts
//!   one-hit keys first: a flood of new addresses churns among itself while
//!   the heavy clients, the ones a limit is for, keep their state; a key
//!   that is refused still counts as used, so an abuser is not forgotten;
//! - a key's decision runs under its shard's lock (no allocation, no
//!   `Arc` per key), so concurrent requests of one key are exact.
//!
//! A forgotten key is indistinguishable from a new one: at worst it gets
//! its burst again. Idle keys are exactly the ones evicted first.
//!
//! [`ProxyError::RateLimited`]: crate::error::ProxyError::RateLimited
//! [`ClientIp`]: crate::client_addr::ClientIp
//! [`VerifiedClaims`]: crate::auth::VerifiedClaims

pub mod config;
mod layer;
mod limiter;
mod registry;
mod service;
mod store;

pub use config::{BucketRateLimits, Rate, RateLimitConfig, UserRateConfig};
pub use layer::{ClientRateLimitLayer, UserRateLimitLayer};
pub use limiter::{KeyedLimit, SharedLimit, UserKey, UserLimit, address_key};
pub use registry::{RateLimitShared, RateLimits};
pub use service::{ClientRateLimit, RateLimitFuture, UserRateLimit};
pub use store::BoundedStore;
