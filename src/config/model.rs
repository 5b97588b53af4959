//! The validated configuration the rest of the proxy is built from.
//!
//! These types are produced only by [`crate::config::Config::from_yaml_str`] and
//! friends, after `${VAR}` expansion and validation, so the code that builds the
//! layer stack never has to re-check them.
//!
//! The top-level [`Config`], a bucket ([`BucketConfig`]) and [`Secret`] are
//! defined here; each section's type is defined by its concern and
//! re-exported, so every type is reachable as `crate::config::Name`.

use std::fmt;

pub use crate::audit::config::{
    AuditFileConfig, AuditLevel, AuditLogConfig, AuditS3Config, AuditSyslogConfig, RotationPolicy,
    SyslogProtocol,
};
pub use crate::auth::config::{
    AdminJwtConfig, AuthConfig, ClaimOperator, ClaimRule, JwksSource, JwtConfig, KeySource,
    StaticKey, TokenSource,
};
pub use crate::authz::config::{
    AuthorizationConfig, FailMode, OpaConfig, OpenFgaConfig, PolicyEngineConfig, RegoConfig,
};
pub use crate::breaker::config::BreakerConfig;
pub use crate::cache::config::{
    BucketCacheConfig, CacheConfig, CacheTierKind, DiskCacheConfig, MemoryCacheConfig,
    RedisCacheConfig,
};
pub use crate::cors::CorsConfig;
pub use crate::error_format::BucketErrors;
pub use crate::failover::config::ReplicaConfig;
pub use crate::ip_filter::IpFilterConfig;
pub use crate::rate_limit::config::{BucketRateLimits, Rate, RateLimitConfig, UserRateConfig};
pub use crate::retry::config::RetryConfig;
pub use crate::server::config::{AdminConfig, MetricsConfig, ServerConfig};
pub use crate::telemetry::config::{LogFormat, LoggingConfig};
pub use crate::telemetry::otel::config::{ObservabilityConfig, SlowQueryConfig, TracingConfig};
pub use crate::upstream::config::{
    CaBundle, CredentialSource, Provider, S3Config, S3Credentials, UpstreamConfig,
};
pub use crate::website::WebsiteConfig;

/// A string that must never be printed: credentials, tokens.
///
/// `Debug` and `Display` print `[redacted]`, so a secret cannot leak through a
/// log line or an error message by accident.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is really used (signing, comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The whole validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The main (data) listener.
    pub server: ServerConfig,
    /// The admin API listener.
    pub admin: AdminConfig,
    /// Outgoing connection pool settings shared by every bucket.
    pub upstream: UpstreamConfig,
    /// The bucket routes, in configuration order.
    pub buckets: Vec<BucketConfig>,
    /// Log level and format.
    pub logging: LoggingConfig,
    /// The Prometheus listener.
    pub metrics: MetricsConfig,
    /// The response cache (outlives reloads; see [`crate::cache`]).
    pub cache: CacheConfig,
    /// `cors:`, the CORS rules of every bucket without its own (see [`crate::cors`]).
    pub cors: Option<CorsConfig>,
    /// `audit_log:`, when enabled (see [`crate::audit`]); fixed at start.
    pub audit_log: Option<AuditLogConfig>,
    /// `observability:`: trace export and the slow-request log (see
    /// [`crate::telemetry::otel`]); fixed at start.
    pub observability: ObservabilityConfig,
}

/// One path prefix mapped to one S3 bucket.
#[derive(Debug, Clone)]
pub struct BucketConfig {
    /// Unique name, used in logs, metrics labels and `/ready`.
    pub name: String,
    /// URL prefix, starting with `/`, without a trailing `/` (except the root `/`).
    pub path_prefix: String,
    /// Where and how to reach the bucket.
    pub s3: S3Config,
    /// Access control for this bucket.
    pub auth: AuthConfig,
    /// Caching overrides for this bucket.
    pub cache: BucketCacheConfig,
    /// Which client addresses may use this bucket.
    pub ip_filter: IpFilterConfig,
    /// `s3.replicas`, sorted by priority; when not empty they are the
    /// bucket's S3 targets (and `s3` only its legacy description).
    pub replicas: Vec<ReplicaConfig>,
    /// `s3.fallback_on_404`: where a key the targets do not have is looked up.
    pub fallback_on_404: Option<S3Config>,
    /// The bucket's own rate limits (`s3.rate_limit`, `rate_limit_per_user`).
    pub rate_limits: BucketRateLimits,
    /// `s3.circuit_breaker`, for each S3 target; `None`: no breaker.
    pub circuit_breaker: Option<BreakerConfig>,
    /// `s3.retry`, for each S3 target; `None`: no retries.
    pub retry: Option<RetryConfig>,
    /// `cors`, the bucket's own CORS rules, replacing the top-level ones;
    /// `None`: the top-level ones apply ([`crate::cors::effective`]).
    pub cors: Option<CorsConfig>,
    /// `errors`: the error body format of the bucket's answers.
    pub errors: BucketErrors,
    /// `website`: index and error documents; `None`: no website.
    pub website: Option<WebsiteConfig>,
}
