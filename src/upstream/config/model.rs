//! The validated S3 target settings: the shared client pool, and where each
//! bucket lives and how requests to it are signed.

use std::time::Duration;

use super::{CaBundle, CredentialSource};
use crate::config::Secret;

/// Settings of the pooled hyper client that talks to S3.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamConfig {
    /// Idle keep-alive connections kept per upstream host.
    pub pool_max_idle_per_host: usize,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// Longest wait for a TCP (and TLS) connection to S3.
    pub connect_timeout: Duration,
    /// Size of every read from an S3 connection: the memory one streaming
    /// download holds, traded against syscalls per byte.
    pub read_buffer_bytes: usize,
    /// Requests one bucket may have in flight to S3 at once (each holds a
    /// connection until its response body ends); 0 = no cap. Keeps one busy
    /// bucket from taking every socket the proxy may open.
    pub max_connections_per_bucket: usize,
    /// How long a request waits for one of its bucket's connections to free
    /// before it is answered 503 `UpstreamBusy`.
    pub connection_wait: Duration,
}

impl UpstreamConfig {
    /// Default [`Self::read_buffer_bytes`]: 96 KiB. With 32 concurrent
    /// downloads it held 64 KiB per download where 128 KiB held 192 KiB,
    /// at the same single-download speed (docs/PERFORMANCE.md).
    pub const DEFAULT_READ_BUFFER_BYTES: usize = 96 * 1024;
    /// Smallest [`Self::read_buffer_bytes`]: S3's response head must fit in one read.
    pub const MIN_READ_BUFFER_BYTES: usize = 16 * 1024;
    /// Largest [`Self::read_buffer_bytes`]: 4 MiB.
    pub const MAX_READ_BUFFER_BYTES: usize = 4 * 1024 * 1024;
    /// Default [`Self::connection_wait`]: 200 ms, about one S3 first-byte
    /// latency, so a burst at the cap rides on connections that free within
    /// one typical small-object exchange, while a bucket that stays busy is
    /// answered quickly.
    pub const DEFAULT_CONNECTION_WAIT: Duration = Duration::from_millis(200);
}

impl Default for UpstreamConfig {
    /// What a configuration without `upstream:` gets (docs/configuration.md).
    fn default() -> Self {
        UpstreamConfig {
            pool_max_idle_per_host: 64,
            pool_idle_timeout: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(5),
            read_buffer_bytes: Self::DEFAULT_READ_BUFFER_BYTES,
            // No cap: `server.max_concurrent_requests` already bounds the
            // total, and any per-bucket number would be a guess at how many
            // buckets share the proxy.
            max_connections_per_bucket: 0,
            connection_wait: Self::DEFAULT_CONNECTION_WAIT,
        }
    }
}

/// Where a bucket lives and the credentials used to sign requests to it.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The real S3 bucket name (never shown to clients).
    pub bucket: String,
    /// The region used for signing.
    pub region: String,
    /// Custom endpoint (MinIO, R2, …); `None` means AWS (`https://s3.<region>.amazonaws.com`).
    pub endpoint: Option<http::Uri>,
    /// Path-style (`endpoint/bucket/key`) rather than virtual-hosted (`bucket.endpoint/key`) addressing.
    pub force_path_style: bool,
    /// Signing credentials; `None` sends unsigned requests (public buckets).
    pub credentials: Option<S3Credentials>,
    /// Credentials fetched and refreshed at run time by an AWS SDK provider
    /// (`credentials:`); set only when [`Self::credentials`] is `None`.
    pub credential_source: Option<CredentialSource>,
    /// Extra PEM CA bundle trusted for this bucket's HTTPS endpoint, read
    /// at validation (it dereferences to its path).
    pub ca_cert_path: Option<CaBundle>,
}

/// AWS credentials for one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Credentials {
    /// Access key id (not secret by itself, but never logged either).
    pub access_key: Secret,
    /// Secret access key.
    pub secret_key: Secret,
    /// Optional STS session token.
    pub session_token: Option<Secret>,
}
