//! The response cache: memory, disk and Redis tiers behind one tower layer.
//!
//! Sits after authentication and authorization (only authorized requests
//! read cached bytes) and before the S3 request is built. The store lives in
//! [`CacheShared`], outside the per-configuration stack, so reloads keep it.
//!
//! Layout:
//! - `layer.rs` / `service.rs`: the tower layer; hit, miss, revalidation,
//!   stale-if-error, bypass, and the `X-Cache` marker.
//! - `store.rs`: the tiers in lookup order, promotion, the background fill
//!   queue, purges and forgets; `epoch.rs`: how a purge wins over writes
//!   already under way.
//! - `memory.rs`: the `quick_cache` tier, sharded so the largest item fits.
//! - `fill.rs`: the streaming fill (tee into a capped buffer, store on completion).
//! - `coalesce.rs`: one upstream request per key for concurrent misses.
//! - `policy.rs`: what is storable, its metadata and TTL, refresh from a 304.
//! - `serve/`: answering GET/HEAD from an entry (conditionals, ranges, multipart).
//! - `stats.rs`: per-bucket counters; `admin.rs`: purge and stats API.
//! - `entry.rs`, `key.rs`, `tier.rs`: what is stored, under which key (the
//!   key includes a fingerprint of the S3 backend), and the interface of the
//!   slower tiers.
//! - `disk/`, `redis/`, `codec.rs`: the slower tiers and their encoding;
//!   `tiers.rs` opens them from the configuration.

pub mod admin;
mod coalesce;
pub mod codec;
pub mod config;
pub mod disk;
pub mod entry;
mod epoch;
mod fill;
pub mod key;
mod layer;
mod memory;
pub mod policy;
pub mod redis;
pub mod serve;
mod service;
mod stats;
mod store;
pub mod tier;
mod tiers;

pub use entry::{CachedObject, ObjectMeta};
pub use key::{BackendId, CacheKey};
pub use layer::CacheLayer;
pub use service::{Cache, X_CACHE};
pub use tier::{CacheTier, PurgeScope, TierError, TierFuture, TierStats};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{CacheConfig, Config, S3Config, S3Credentials};
use crate::stack::BuildError;
use store::Store;

/// The cache store and its tiers; survives reloads.
#[derive(Debug, Default)]
pub struct CacheShared {
    state: Mutex<SharedState>,
}

#[derive(Debug, Default)]
struct SharedState {
    store: Option<Arc<Store>>,
    /// What each configured bucket pointed at, to purge it when that changes.
    ///
    /// Not what keeps a repointed bucket from serving old data: keys carry
    /// the backend fingerprint ([`BackendId`]), so old entries are never
    /// found, in this process or after a restart. The purge frees their
    /// space at once (they would otherwise wait for eviction or expiry) and
    /// covers what the fingerprint leaves out (credentials, addressing).
    identities: HashMap<String, BucketIdentity>,
}

/// The S3 data a bucket name stands for: when it changes, its entries are wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BucketIdentity {
    bucket: String,
    region: String,
    endpoint: Option<String>,
    force_path_style: bool,
    credentials: Option<S3Credentials>,
}

impl BucketIdentity {
    fn of(s3: &S3Config) -> Self {
        Self {
            bucket: s3.bucket.clone(),
            region: s3.region.clone(),
            endpoint: s3.endpoint.as_ref().map(ToString::to_string),
            force_path_style: s3.force_path_style,
            credentials: s3.credentials.clone(),
        }
    }
}

impl CacheShared {
    /// The store, once a configuration with caching enabled was built.
    pub(crate) fn store(&self) -> Option<Arc<Store>> {
        self.lock().store.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Readies the store for `config`: builds it the first time caching is
    /// enabled, and purges buckets that were removed or now point at other
    /// S3 data. Tier settings are fixed at start: a reload that changes them
    /// keeps the running tiers and logs a warning (restart to apply).
    fn prepare(&self, config: &Config) -> Result<Option<Arc<Store>>, BuildError> {
        let mut state = self.lock();
        if state.store.is_none() && config.cache.enabled {
            let slower = tiers::open(&config.cache)?;
            let store = Store::new(&config.cache, slower).map_err(|message| BuildError {
                path: "cache".into(),
                message,
            })?;
            let store = Arc::new(store);
            store.follow_remote_purges();
            state.store = Some(store);
        }
        let new: HashMap<String, BucketIdentity> = config
            .buckets
            .iter()
            .map(|b| (b.name.clone(), BucketIdentity::of(&b.s3)))
            .collect();
        if let Some(store) = &state.store {
            if config.cache.enabled && !same_tiers(store.config(), &config.cache) {
                tracing::warn!(
                    "the cache section changed; the running cache tiers keep their settings until restart"
                );
            }
            for (name, old) in &state.identities {
                if new.get(name) != Some(old) {
                    tracing::info!(bucket = %name, "bucket removed or repointed; purging its cache entries");
                    store.purge_detached(PurgeScope::Bucket(name.clone()));
                }
            }
        }
        state.identities = new;
        Ok(state.store.clone().filter(|_| config.cache.enabled))
    }
}

/// Whether two cache sections build the same tiers (TTLs and the stale
/// window are per-request policy and apply at every reload).
fn same_tiers(a: &CacheConfig, b: &CacheConfig) -> bool {
    a.layers == b.layers
        && a.memory.max_item_size == b.memory.max_item_size
        && a.memory.max_cache_size == b.memory.max_cache_size
        && a.disk == b.disk
        && a.redis == b.redis
}
