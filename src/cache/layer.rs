use std::collections::HashMap;
use std::sync::Arc;

use tower::Layer;

use super::key::BackendId;
use super::policy::StoragePolicy;
use super::service::{BucketPolicy, Cache, CacheContext};
use crate::config::Config;
use crate::shared::Shared;
use crate::stack::BuildError;

/// Serves GET and HEAD from the cache and fills it from S3's answers.
///
/// Built per configuration generation; the store it uses lives in
/// [`super::CacheShared`] and survives reloads. When caching is disabled
/// the layer passes every request straight through.
#[derive(Debug, Clone, Default)]
pub struct CacheLayer {
    context: Option<Arc<CacheContext>>,
}

impl CacheLayer {
    /// Builds the cache layer of one configuration generation (purging
    /// buckets that were removed or now point at other S3 data).
    pub fn build(config: &Config, shared: &Shared) -> Result<Self, BuildError> {
        let Some(store) = shared.cache.prepare(config)? else {
            return Ok(Self { context: None });
        };
        let buckets = config
            .buckets
            .iter()
            .map(|bucket| {
                let name: Arc<str> = Arc::from(bucket.name.as_str());
                let policy = BucketPolicy {
                    enabled: bucket.cache.enabled,
                    storage: StoragePolicy {
                        ttl: bucket.cache.ttl.unwrap_or(config.cache.memory.default_ttl),
                        // Never above what the running memory tier accepts.
                        max_item_size: bucket
                            .cache
                            .max_item_size
                            .unwrap_or(config.cache.memory.max_item_size)
                            .min(store.config().memory.max_item_size),
                    },
                    counters: store.bucket_counters(&name),
                    backend: BackendId::of(&bucket.s3),
                };
                (name, policy)
            })
            .collect::<HashMap<_, _>>();
        Ok(Self {
            context: Some(Arc::new(CacheContext {
                store,
                buckets,
                stale_if_error: config.cache.stale_if_error,
                coalesce_wait: config.server.request_timeout,
            })),
        })
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = Cache<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cache {
            inner,
            context: self.context.clone(),
        }
    }
}
