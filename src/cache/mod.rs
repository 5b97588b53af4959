//! The response cache: memory, disk and Redis tiers behind one tower layer.
//!
//! Sits after authentication and authorization (only authorized requests
//! read cached bytes) and before the S3 request is built. The store lives in
//! [`CacheShared`], outside the per-configuration stack, so reloads keep it.
//!
//! Layout:
//! - `layer.rs` / `service.rs`: the tower layer built per bucket; hit,
//!   bypass and the `X-Cache` marker; `miss.rs`: coalesced fetch and fill;
//!   `revalidate.rs`: conditional refresh and stale-if-error.
//! - `store.rs`: the tiers in lookup order, promotion, the background fill
//!   queue, purges and forgets; `epoch.rs`: how a purge wins over writes
//!   already under way.
//! - `memory.rs`: the `quick_cache` tier, sharded so the largest item fits.
//! - `fill.rs`: the streaming fill (tee into a capped buffer, store on
//!   completion); `fill_span.rs`: its `cache.fill` span when traced.
//! - `range_miss.rs`: a range miss fetches the whole object once;
//!   `growing.rs`: that object readable while it arrives; `slice/`:
//!   objects over the item limit, cached in slices.
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
mod fill_span;
mod growing;
pub mod key;
mod layer;
mod memory;
mod miss;
pub mod policy;
mod range_miss;
pub mod redis;
mod revalidate;
pub mod serve;
mod service;
mod slice;
mod stats;
mod store;
pub mod tier;
mod tiers;

pub use entry::{CachedObject, ObjectMeta};
pub use key::{BackendId, CacheKey};
pub use layer::{CacheGeneration, CacheLayer};
pub use service::{Cache, X_CACHE};
pub use tier::{CacheTier, PurgeScope, TierError, TierFuture, TierStats};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::build::{BuildError, Staging};
use crate::config::{CacheConfig, Config, MemoryCacheConfig, S3Config, S3Credentials};
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
    /// The store, once a configuration with caching enabled was committed.
    pub(crate) fn store(&self) -> Option<Arc<Store>> {
        self.lock().store.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SharedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The store `config` uses (`None` when caching is disabled): the live
    /// one, or the first time caching is enabled a new one that goes live
    /// at commit. The commit also purges buckets that were removed or now
    /// point at other S3 data. Tier settings are fixed at start: a reload
    /// that changes them keeps the running tiers and logs a warning.
    fn stage(
        &self,
        config: &Config,
        staging: &mut Staging<'_>,
    ) -> Result<Option<Arc<Store>>, BuildError> {
        let live = self.store();
        let created = match (&live, config.cache.enabled) {
            (None, true) => {
                let slower = tiers::open(&config.cache)?;
                let store = Store::new(&config.cache, slower)
                    .map_err(|message| BuildError::new("cache", message))?;
                Some(Arc::new(store))
            }
            _ => None,
        };
        let store = live.or_else(|| created.clone());
        let identities = config
            .buckets
            .iter()
            .map(|b| (b.name.clone(), BucketIdentity::of(&b.s3)))
            .collect();
        let section = config.cache.clone();
        staging.on_commit(move |shared| shared.cache.commit(created, &section, identities));
        Ok(store.filter(|_| config.cache.enabled))
    }

    /// Makes a staged build's cache live (see [`Self::stage`]).
    fn commit(
        &self,
        created: Option<Arc<Store>>,
        section: &CacheConfig,
        identities: HashMap<String, BucketIdentity>,
    ) {
        let mut state = self.lock();
        if let Some(store) = created
            && state.store.is_none()
        {
            store.follow_remote_purges();
            state.store = Some(store);
        }
        if let Some(store) = &state.store {
            if section.enabled && tier_settings(store.config()) != tier_settings(section) {
                tracing::warn!(
                    "the cache section changed; the running cache tiers keep their settings until restart"
                );
            }
            for (name, old) in &state.identities {
                if identities.get(name) != Some(old) {
                    tracing::info!(bucket = %name, "bucket removed or repointed; purging its cache entries");
                    store.purge_detached(PurgeScope::Bucket(name.clone()));
                }
            }
        }
        state.identities = identities;
    }
}

/// The part of a cache section the tiers are built from: the section with
/// what applies per request (TTL, stale window, slice size, the on/off switch) blanked
/// out. Anything else, including settings added later, counts as a change.
fn tier_settings(section: &CacheConfig) -> CacheConfig {
    CacheConfig {
        enabled: true,
        stale_if_error: Duration::ZERO,
        slice_size: 0,
        memory: MemoryCacheConfig {
            default_ttl: Duration::ZERO,
            ..section.memory.clone()
        },
        ..section.clone()
    }
}
