//! The validated listener settings.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::config::AdminJwtConfig;
use crate::config::Secret;
use crate::ip_filter::IpSet;
use crate::limits::SecurityLimitsConfig;
use crate::rate_limit::RateLimitConfig;
use crate::server::tls::{LoadedTls, MinTlsVersion};

/// Settings of the main listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where the proxy listens for clients.
    pub address: SocketAddr,
    /// Longest wait for S3's response headers before answering 504.
    pub request_timeout: Duration,
    /// How long in-flight requests may run after SIGTERM before the process exits.
    pub graceful_shutdown_timeout: Duration,
    /// After SIGTERM, how long the listeners keep serving while `/ready`
    /// answers 503, so load balancers stop sending before connections are
    /// refused (0: the drain starts at once).
    pub shutdown_delay: Duration,
    /// A client that has not sent its complete request headers within this time is dropped
    /// (slow-loris); on every listener it also bounds the time from accepting a connection to
    /// its first request, for HTTP/1.1 and HTTP/2 alike.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long, so idle
    /// keep-alive and HTTP/2 connections do not hold a connection slot forever.
    pub idle_timeout: Duration,
    /// How often every bucket's backend is probed for `/ready`.
    pub readiness_probe_interval: Duration,
    /// Upper bound on concurrently open client connections; further ones wait in the accept queue.
    pub max_connections: usize,
    /// Largest accepted request head (request line plus headers), in bytes.
    pub max_header_bytes: usize,
    /// Streams one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS):
    /// with `max_connections`, it bounds the requests in flight.
    pub http2_max_concurrent_streams: u32,
    /// Threads that run requests; `None`: one per CPU the process may use.
    /// With one, the runtime is tokio's current-thread scheduler (see
    /// [`ServerConfig::runtime_threads`]).
    pub worker_threads: Option<usize>,
    /// Requests in flight at most (until their response body ends); more
    /// are answered 503 at once. `0`: unlimited. Needs a restart.
    pub max_concurrent_requests: usize,
    /// The largest request line, header block and body taken (checked on
    /// every request; reloadable).
    pub security_limits: SecurityLimitsConfig,
    /// Peers whose `Forwarded` / `X-Forwarded-For` / `X-Real-IP` are
    /// believed when deciding the client address (reloadable); empty: the
    /// TCP peer is the client ([`crate::client_addr`]).
    pub trusted_proxies: IpSet,
    /// The global and per-address rate limits (reloadable).
    pub rate_limit: RateLimitConfig,
    /// TLS on [`Self::address`] (`server.https`), when enabled. The
    /// certificate, key and client CA are reloadable; enabling, disabling
    /// and `plain_address` need a restart.
    pub https: Option<HttpsConfig>,
}

/// `server.https`, enabled: the main listener speaks TLS.
#[derive(Debug, Clone)]
pub struct HttpsConfig {
    /// The certificate chain (PEM, leaf first).
    pub cert_path: PathBuf,
    /// The certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_path: PathBuf,
    /// The oldest TLS version accepted.
    pub min_tls_version: MinTlsVersion,
    /// A separate plain-HTTP listener serving the same stack (for probes
    /// behind a TLS-terminating balancer).
    pub plain_address: Option<SocketAddr>,
    /// CAs whose client certificates are required, when set.
    pub client_ca_path: Option<PathBuf>,
    /// The files as read and checked at validation.
    pub loaded: LoadedTls,
}

impl ServerConfig {
    /// Default [`Self::idle_timeout`]: 60 s, longer than the idle time of common
    /// client pools (so they reuse their connections) and short enough that an
    /// idle client gives its slot back within a minute (nginx: 75 s, Envoy: 1 h).
    pub const DEFAULT_IDLE_TIMEOUT_SECONDS: u64 = 60;
    /// Largest [`Self::idle_timeout`]: one hour (Envoy's default).
    pub const MAX_IDLE_TIMEOUT_SECONDS: u64 = 3600;
    /// Default [`Self::http2_max_concurrent_streams`]: 100, the smallest value
    /// RFC 9113 recommends (nginx: 128).
    pub const DEFAULT_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;
    /// Largest [`Self::http2_max_concurrent_streams`].
    pub const MAX_HTTP2_MAX_CONCURRENT_STREAMS: u32 = 1000;

    /// How many threads serve requests: `worker_threads`, or
    /// [`ServerConfig::default_threads`].
    pub fn runtime_threads(&self) -> usize {
        self.worker_threads.unwrap_or_else(Self::default_threads)
    }

    /// The default thread count: the CPUs this process may use (its affinity
    /// mask and cgroup CPU quota).
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
    }
}

/// Settings of the admin API listener (`/admin/*`).
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Where the admin API listens; `None` disables it.
    pub address: Option<SocketAddr>,
    /// Bearer token required by `/admin/*` when set.
    pub token: Option<Secret>,
    /// JWTs accepted by `/admin/*` (besides the static token), when set.
    pub jwt: Option<AdminJwtConfig>,
    /// Host names (lowercase) and IP addresses (canonical form) accepted in
    /// the `Host` of admin requests besides `localhost`, loopback IPs and the
    /// bound address: the guard against DNS rebinding
    /// ([`crate::auth::admin_guard`]).
    pub allowed_hosts: Vec<String>,
}

/// The Prometheus exporter settings.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Whether the `/metrics` listener runs.
    pub enabled: bool,
    /// Where `/metrics` is served.
    pub address: SocketAddr,
}
