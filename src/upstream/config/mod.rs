//! `upstream:` and `buckets[i].s3:`: the S3 target's settings (the pooled
//! client, and each bucket's name, region, endpoint, credentials and CA
//! bundle), as written, validated, and the validated types the backends and
//! clients are built from.
//!
//! Credentials are never echoed: they are kept as
//! [`Secret`](crate::config::Secret)s. A CA bundle
//! is read once, at validation ([`CaBundle`]).

use serde::Deserialize;

use crate::config::{Bool, Str, U64};
use crate::rate_limit::config::RawRate;

mod ca_bundle;
mod credentials;
mod model;
mod pool;
mod s3;

pub use ca_bundle::CaBundle;
pub use model::{S3Config, S3Credentials, UpstreamConfig};
pub(crate) use pool::upstream;
pub(crate) use s3::s3_config;

/// `upstream:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the upstream section (a mapping)"
)]
pub(crate) struct RawUpstream {
    pub(crate) pool_max_idle_per_host: Option<U64>,
    pub(crate) pool_idle_timeout_seconds: Option<U64>,
    pub(crate) connect_timeout_seconds: Option<U64>,
    pub(crate) read_buffer_bytes: Option<U64>,
    pub(crate) max_connections_per_bucket: Option<U64>,
    pub(crate) connection_wait_ms: Option<U64>,
}

/// `buckets[i].s3:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "the s3 section (a mapping)")]
pub(crate) struct RawS3 {
    pub(crate) bucket: Option<Str>,
    pub(crate) region: Option<Str>,
    pub(crate) endpoint: Option<Str>,
    pub(crate) force_path_style: Option<Bool>,
    pub(crate) access_key: Option<Str>,
    pub(crate) secret_key: Option<Str>,
    pub(crate) session_token: Option<Str>,
    pub(crate) anonymous: Option<Bool>,
    pub(crate) ca_cert_path: Option<Str>,
    /// The bucket's S3 targets in priority order (validated by `crate::failover`).
    pub(crate) replicas: Option<Vec<crate::failover::config::RawReplica>>,
    /// Where a missing key is looked up (validated by `crate::fallback`).
    pub(crate) fallback_on_404: Option<crate::fallback::config::RawFallback>,
    /// Validated with the bucket (`rate_limit::config`), not with the S3 target.
    pub(crate) rate_limit: Option<RawRate>,
    /// Validated by the breaker (`crate::breaker::config`).
    pub(crate) circuit_breaker: Option<crate::breaker::config::RawCircuitBreaker>,
    /// Validated by the retry layer (`crate::retry::config`).
    pub(crate) retry: Option<crate::retry::config::RawRetry>,
}
