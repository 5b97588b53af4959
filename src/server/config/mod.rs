//! `server:`, `admin:` and `metrics:`: the three listeners, as written,
//! validated, and the validated settings the accept loops are built from.
//!
//! An address is written `host:port`, or as an IP or host name with a
//! separate `port:` (the admin listener takes `host:port` only). Two enabled
//! listeners may not share a port.

use serde::Deserialize;

use crate::auth::config::RawJwt;
use crate::config::{Bool, Str, U64};
use crate::limits::config::RawSecurityLimits;
use crate::rate_limit::config::RawRateLimit;

mod address;
mod admin;
mod https;
mod listeners;
mod model;

pub use crate::server::tls::{LoadedTls, MinTlsVersion};
pub(crate) use admin::admin;
pub(crate) use listeners::{listener_conflicts, metrics, server};
pub use model::{AdminConfig, HttpsConfig, MetricsConfig, ServerConfig};

/// `server:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the server section (a mapping)"
)]
pub(crate) struct RawServer {
    pub(crate) address: Option<Str>,
    pub(crate) port: Option<U64>,
    pub(crate) request_timeout_seconds: Option<U64>,
    pub(crate) graceful_shutdown_timeout_seconds: Option<U64>,
    pub(crate) shutdown_delay_seconds: Option<U64>,
    pub(crate) header_read_timeout_seconds: Option<U64>,
    pub(crate) readiness_probe_interval_seconds: Option<U64>,
    pub(crate) max_connections: Option<U64>,
    pub(crate) max_header_bytes: Option<U64>,
    pub(crate) worker_threads: Option<U64>,
    pub(crate) idle_timeout_seconds: Option<U64>,
    pub(crate) http2_max_concurrent_streams: Option<U64>,
    pub(crate) max_concurrent_requests: Option<U64>,
    pub(crate) security_limits: RawSecurityLimits,
    pub(crate) trusted_proxies: Option<Vec<Str>>,
    pub(crate) rate_limit: Option<RawRateLimit>,
    pub(crate) https: Option<https::RawHttps>,
}

/// `admin:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the admin section (a mapping)"
)]
pub(crate) struct RawAdmin {
    pub(super) enabled: Option<Bool>,
    pub(super) address: Option<Str>,
    pub(super) token: Option<Str>,
    pub(super) jwt: Option<RawJwt>,
    pub(super) allowed_hosts: Option<Vec<Str>>,
}

/// `metrics:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the metrics section (a mapping)"
)]
pub(crate) struct RawMetrics {
    pub(crate) enabled: Option<Bool>,
    pub(crate) address: Option<Str>,
    pub(crate) port: Option<U64>,
}
