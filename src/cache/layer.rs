use std::sync::Arc;
use std::time::Duration;

use tower::Layer;

use super::CacheShared;
use super::key::BackendId;
use super::policy::StoragePolicy;
use super::service::{BucketPolicy, Cache, CacheContext};
use crate::build::{BuildError, Staging};
use crate::config::{BucketConfig, Config};

/// The cache as one configuration generation uses it: the store (which
/// lives in [`CacheShared`] and survives reloads) and the settings every
/// bucket shares.
#[derive(Debug, Clone)]
pub struct CacheGeneration {
    context: Arc<CacheContext>,
    default_ttl: Duration,
    default_max_item_size: u64,
    /// What the running memory tier accepts: no bucket stores more.
    tier_max_item_size: u64,
    /// `cache.slice_size_mb` in bytes; 0: off.
    slice_size: u64,
}

impl CacheGeneration {
    /// The cache of `config`, or `None` when caching is disabled. The store
    /// is built the first time caching is enabled; it, and the purge of
    /// buckets removed or repointed, take effect when `staging` commits.
    pub fn stage(
        config: &Config,
        shared: &CacheShared,
        staging: &mut Staging<'_>,
    ) -> Result<Option<Self>, BuildError> {
        let Some(store) = shared.stage(config, staging)? else {
            return Ok(None);
        };
        let memory = &config.cache.memory;
        Ok(Some(Self {
            default_max_item_size: memory.max_item_size,
            tier_max_item_size: store.config().memory.max_item_size,
            default_ttl: memory.default_ttl,
            slice_size: config.cache.slice_size,
            context: Arc::new(CacheContext {
                store,
                stale_if_error: config.cache.stale_if_error,
                coalesce_wait: config.server.request_timeout,
            }),
        }))
    }
}

/// Serves one bucket's GET and HEAD from the cache and fills it from S3's
/// answers. Present for every bucket while caching is enabled: a bucket
/// that opted out is passed through, marked `X-Cache: BYPASS`.
#[derive(Debug, Clone)]
pub struct CacheLayer {
    context: Arc<CacheContext>,
    bucket: Arc<BucketPolicy>,
}

impl CacheLayer {
    /// The layer of `bucket` in `generation`.
    pub fn for_bucket(generation: &CacheGeneration, bucket: &BucketConfig) -> Self {
        let name: Arc<str> = Arc::from(bucket.name.as_str());
        let storage = StoragePolicy {
            ttl: bucket.cache.ttl.unwrap_or(generation.default_ttl),
            max_item_size: bucket
                .cache
                .max_item_size
                .unwrap_or(generation.default_max_item_size)
                .min(generation.tier_max_item_size),
        };
        let policy = BucketPolicy {
            enabled: bucket.cache.enabled,
            // A slice is stored like an object: a bucket whose item limit
            // is below the slice size caches no slices.
            slice_size: Some(generation.slice_size)
                .filter(|size| *size <= storage.max_item_size)
                .unwrap_or(0),
            storage,
            counters: generation.context.store.bucket_counters(&name),
            backend: BackendId::of_bucket(bucket),
            name,
        };
        Self {
            context: generation.context.clone(),
            bucket: Arc::new(policy),
        }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cache {
            inner,
            context: self.context.clone(),
            bucket: self.bucket.clone(),
        }
    }
}
