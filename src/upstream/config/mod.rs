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
mod credential_source;
mod credentials;
mod model;
mod pool;
mod s3;

pub use ca_bundle::CaBundle;
pub use credential_source::{CredentialSource, Provider};
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

/// An s3 block as written: `buckets[i].s3`, each of its `replicas[]` and its
/// `fallback_on_404`.
///
/// All three are S3 targets with the same keys; each place takes the extra
/// keys it allows before [`s3_config`] validates the target, which refuses
/// any extra key left (a `name` outside a replica, `replicas` in the
/// fallback, ...).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "an s3 block (a mapping)")]
pub(crate) struct RawS3 {
    pub(crate) bucket: Option<Str>,
    pub(crate) region: Option<Str>,
    pub(crate) endpoint: Option<Str>,
    pub(crate) force_path_style: Option<Bool>,
    pub(crate) access_key: Option<Str>,
    pub(crate) secret_key: Option<Str>,
    pub(crate) session_token: Option<Str>,
    pub(crate) anonymous: Option<Bool>,
    /// Where the signing credentials come from at run time (instead of keys).
    pub(crate) credentials: Option<credential_source::RawCredentialSource>,
    pub(crate) ca_cert_path: Option<Str>,
    /// A replica's name, priority and request timeout (`crate::failover`).
    pub(crate) name: Option<Str>,
    pub(crate) priority: Option<U64>,
    pub(crate) timeout: Option<U64>,
    /// The bucket's S3 targets in priority order (validated by `crate::failover`).
    pub(crate) replicas: Option<Vec<RawS3>>,
    /// Where a missing key is looked up (validated by `crate::fallback`).
    pub(crate) fallback_on_404: Option<Box<RawS3>>,
    /// Validated with the bucket (`rate_limit::config`), not with the S3 target.
    pub(crate) rate_limit: Option<RawRate>,
    /// Validated by the breaker (`crate::breaker::config`).
    pub(crate) circuit_breaker: Option<crate::breaker::config::RawCircuitBreaker>,
    /// Validated by the retry layer (`crate::retry::config`).
    pub(crate) retry: Option<crate::retry::config::RawRetry>,
}

impl RawS3 {
    /// The keys only some places take, and whether this block has each.
    fn place_keys(&self) -> [(&'static str, bool, &'static str); 8] {
        const REPLICA: &str = "only a replica (an entry of s3.replicas) takes it";
        const BUCKET: &str = "only a bucket's own s3 section takes it";
        [
            ("name", self.name.is_some(), REPLICA),
            ("priority", self.priority.is_some(), REPLICA),
            ("timeout", self.timeout.is_some(), REPLICA),
            ("replicas", self.replicas.is_some(), BUCKET),
            ("fallback_on_404", self.fallback_on_404.is_some(), BUCKET),
            ("rate_limit", self.rate_limit.is_some(), BUCKET),
            ("circuit_breaker", self.circuit_breaker.is_some(), BUCKET),
            ("retry", self.retry.is_some(), BUCKET),
        ]
    }
}
