//! The validated cache settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Secret;

/// The response cache shared by every bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// Whether responses are cached at all.
    pub enabled: bool,
    /// The tiers in lookup order (fastest first); never empty when enabled.
    pub layers: Vec<CacheTierKind>,
    /// The in-process tier.
    pub memory: MemoryCacheConfig,
    /// The local-disk tier, when listed in `layers`.
    pub disk: Option<DiskCacheConfig>,
    /// The shared Redis tier, when listed in `layers`.
    pub redis: Option<RedisCacheConfig>,
    /// How long past its TTL an entry may still be served when S3 fails; zero disables.
    pub stale_if_error: Duration,
    /// Objects larger than the item limit are cached in slices of this
    /// many bytes, each fetched with its own range request; zero: off
    /// (ranges of such objects go to S3 as asked).
    pub slice_size: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            layers: vec![CacheTierKind::Memory],
            memory: MemoryCacheConfig::default(),
            disk: None,
            redis: None,
            stale_if_error: Duration::from_secs(300),
            slice_size: 0,
        }
    }
}

/// One cache tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheTierKind {
    /// In-process, weighted by bytes.
    Memory,
    /// Files under `cache_dir`; survives restarts.
    Disk,
    /// Shared between proxy instances.
    Redis,
}

impl CacheTierKind {
    /// The name used in configuration, metrics labels and `X-Cache`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Disk => "disk",
            Self::Redis => "redis",
        }
    }
}

/// The in-process tier's limits (and the default TTL and item limit of every tier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryCacheConfig {
    /// Largest object stored, in bytes; larger ones stream through uncached.
    pub max_item_size: u64,
    /// Total bytes held by the memory tier.
    pub max_cache_size: u64,
    /// How long an entry is fresh unless the bucket or `Cache-Control: max-age` says less.
    pub default_ttl: Duration,
}

impl Default for MemoryCacheConfig {
    fn default() -> Self {
        Self {
            max_item_size: 10 * 1024 * 1024,
            max_cache_size: 1024 * 1024 * 1024,
            default_ttl: Duration::from_secs(3600),
        }
    }
}

/// The disk tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCacheConfig {
    /// Directory holding the entry files (created if missing).
    pub cache_dir: PathBuf,
    /// Total bytes of entry files kept; beyond it entries are evicted (quick_cache's CLOCK-PRO-like policy: rarely read entries first).
    pub max_size: u64,
}

/// The Redis tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisCacheConfig {
    /// `redis://` or `rediss://` URL (may embed a password, hence secret);
    /// with [`cluster_nodes`](Self::cluster_nodes) set, its first node.
    pub url: Secret,
    /// A Redis Cluster's seed nodes (`cache.redis.cluster_nodes`); empty for
    /// one server at [`url`](Self::url). The rest of the cluster is found
    /// from these.
    pub cluster_nodes: Vec<Secret>,
    /// Password, when not in the URL.
    pub password: Option<Secret>,
    /// Database number.
    pub db: i64,
    /// Prefix of every key (and of the purge channel), so instances can share a Redis.
    pub key_prefix: String,
    /// Expiry set with every write.
    pub ttl: Duration,
    /// Pooled connections (multiplexed; a few are enough).
    pub pool_size: u32,
    /// Longest wait for any Redis operation; a timeout is a miss.
    pub timeout: Duration,
}

/// Per-bucket overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketCacheConfig {
    /// `false` opts the bucket out of caching.
    pub enabled: bool,
    /// Fresh lifetime of this bucket's entries (default: the memory tier's).
    pub ttl: Option<Duration>,
    /// Largest object cached for this bucket (default: the memory tier's).
    pub max_item_size: Option<u64>,
}

impl Default for BucketCacheConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ttl: None,
            max_item_size: None,
        }
    }
}
