//! The in-process tier: `quick_cache` weighted by bytes.
//!
//! Entries share their payload through `Bytes`, so a hit clones two reference
//! counts and never copies the body.
//!
//! `quick_cache` splits its capacity across shards and silently refuses an
//! item heavier than one shard's hot section, so the shard count is derived
//! from the configured sizes: the largest allowed item always fits one shard.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use super::{CacheKey, CachedObject, PurgeScope};
use crate::config::MemoryCacheConfig;
use crate::telemetry::metrics::CACHE_EVICTIONS_TOTAL;

/// Bytes charged per entry besides its body, key and header bytes: the
/// entry's structs, the header map's tables and the cache's own slot, as
/// measured (about 1.8 KiB for a 1 KiB object with five headers; RSS grew by
/// 2.8 KiB per such entry).
const ENTRY_BASE: u64 = 1024;
/// Bytes charged per stored header besides its name and value.
const HEADER_OVERHEAD: u64 = 96;
/// The most an entry is charged besides its body. S3 keeps keys to 1 KiB and
/// user metadata to 2 KiB, so real entries stay far below; the cap keeps the
/// guarantee that an item of `max_item_size` fits a shard.
pub(crate) const MAX_ENTRY_OVERHEAD: u64 = 16 * 1024;

/// The share of a shard's weight `quick_cache` keeps for hot items (its default).
const HOT_ALLOCATION: f64 = 0.97;

/// Most shards used, whatever the core count.
const MAX_SHARDS: usize = 64;

/// Weighs an entry by the memory it holds: its body, plus its key, headers
/// and bookkeeping (see [`overhead`]). Never zero, so every entry is evictable.
#[derive(Debug, Clone, Copy)]
struct ByteWeighter;

impl Weighter<CacheKey, CachedObject> for ByteWeighter {
    fn weight(&self, key: &CacheKey, value: &CachedObject) -> u64 {
        value.body.len() as u64 + overhead(key, value)
    }
}

/// What an entry costs besides its body: small objects are mostly overhead,
/// so counting only bodies would let a cache of many small objects use
/// several times its configured size.
fn overhead(key: &CacheKey, value: &CachedObject) -> u64 {
    let key_bytes = key.object.len() + key.version_id.as_ref().map_or(0, String::len);
    let header_bytes: u64 = value
        .meta
        .headers
        .iter()
        .map(|(name, v)| HEADER_OVERHEAD + (name.as_str().len() + v.len()) as u64)
        .sum();
    let etag = value.meta.etag.as_ref().map_or(0, String::len);
    (ENTRY_BASE + key_bytes as u64 + etag as u64 + header_bytes).min(MAX_ENTRY_OVERHEAD)
}

/// Counts evictions (for stats and `yatagarasu_cache_evictions_total`).
#[derive(Debug, Clone)]
struct EvictionCounter(Arc<AtomicU64>);

impl Lifecycle<CacheKey, CachedObject> for EvictionCounter {
    type RequestState = ();

    fn on_evict(&self, _state: &mut (), _key: CacheKey, _value: CachedObject) {
        self.0.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(CACHE_EVICTIONS_TOTAL, "tier" => "memory").increment(1);
    }
}

type Inner = Cache<CacheKey, CachedObject, ByteWeighter, DefaultHashBuilder, EvictionCounter>;

/// The memory tier.
pub(crate) struct MemoryTier {
    cache: Inner,
    max_item_size: u64,
    evictions: Arc<AtomicU64>,
}

impl std::fmt::Debug for MemoryTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryTier")
            .field("items", &self.cache.len())
            .field("weight", &self.cache.weight())
            .field("capacity", &self.cache.capacity())
            .field("shards", &self.cache.num_shards())
            .finish()
    }
}

/// The capacity and shard count that let an item of `max_item_size` fit one shard.
fn sizing(config: &MemoryCacheConfig) -> (u64, usize) {
    let largest = config.max_item_size + MAX_ENTRY_OVERHEAD;
    // The whole cache must hold at least one largest item in its hot section.
    let needed = (largest as f64 / HOT_ALLOCATION).ceil() as u64 + 1;
    let capacity = config.max_cache_size.max(needed);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut shards = (cores * 4).clamp(1, MAX_SHARDS).next_power_of_two();
    while shards > 1 && ((capacity / shards as u64) as f64 * HOT_ALLOCATION) < largest as f64 {
        shards /= 2;
    }
    (capacity, shards)
}

impl MemoryTier {
    /// A memory tier sized from `config`.
    pub(crate) fn new(config: &MemoryCacheConfig) -> Result<Self, String> {
        let (capacity, shards) = sizing(config);
        // quick_cache shrinks the shard count below 32 estimated items per
        // shard, which only makes shards bigger: safe for the size guarantee.
        let estimated_items = (capacity / (16 * 1024)).clamp(32 * shards as u64, 10_000_000);
        let evictions = Arc::new(AtomicU64::new(0));
        let options = OptionsBuilder::new()
            .weight_capacity(capacity)
            .shards(shards)
            .estimated_items_capacity(estimated_items as usize)
            .hot_allocation(HOT_ALLOCATION)
            .build()
            .map_err(|e| format!("memory tier: {e}"))?;
        Ok(Self {
            cache: Cache::with_options(
                options,
                ByteWeighter,
                DefaultHashBuilder::default(),
                EvictionCounter(evictions.clone()),
            ),
            max_item_size: config.max_item_size,
            evictions,
        })
    }

    /// The entry under `key` (cheap clone: shared metadata and body).
    pub(crate) fn get(&self, key: &CacheKey) -> Option<CachedObject> {
        self.cache.get(key)
    }

    /// Stores `object`; returns `false` (and stores nothing) when it exceeds the item limit.
    pub(crate) fn insert(&self, key: CacheKey, object: CachedObject) -> bool {
        if object.body.len() as u64 > self.max_item_size {
            return false;
        }
        self.cache.insert(key, object);
        true
    }

    /// Removes the entry under `key`, if any.
    pub(crate) fn remove(&self, key: &CacheKey) {
        self.cache.remove(key);
    }

    /// Removes what `scope` names; returns how many entries went.
    pub(crate) fn purge(&self, scope: &PurgeScope) -> u64 {
        match scope {
            PurgeScope::All => {
                let removed = self.cache.len() as u64;
                self.cache.clear();
                removed
            }
            PurgeScope::Entry(key) => u64::from(self.cache.remove(key).is_some()),
            PurgeScope::Bucket(_) | PurgeScope::Object { .. } => {
                let removed = AtomicU64::new(0);
                self.cache.retain(|key, _| {
                    let keep = !scope.covers(key);
                    if !keep {
                        removed.fetch_add(1, Ordering::Relaxed);
                    }
                    keep
                });
                removed.into_inner()
            }
        }
    }

    /// Entries held.
    pub(crate) fn items(&self) -> u64 {
        self.cache.len() as u64
    }

    /// Bytes held (bodies plus each entry's overhead).
    pub(crate) fn bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// Entries evicted to stay within the size limit, since start.
    pub(crate) fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    /// Items and body bytes held for `bucket` (walks the cache: for the stats API only).
    pub(crate) fn bucket_usage(&self, bucket: &str) -> (u64, u64) {
        self.cache
            .iter()
            .filter(|(key, _)| &*key.bucket == bucket)
            .fold((0, 0), |(items, bytes), (_, value)| {
                (items + 1, bytes + value.body.len() as u64)
            })
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use bytes::Bytes;

    use super::*;
    use crate::cache::ObjectMeta;

    fn object(len: usize) -> CachedObject {
        CachedObject {
            meta: Arc::new(ObjectMeta {
                headers: http::HeaderMap::new(),
                content_length: len as u64,
                etag: None,
                last_modified: None,
                stored_at: SystemTime::now(),
                fresh_until: SystemTime::now(),
            }),
            body: Bytes::from(vec![7u8; len]),
        }
    }

    fn key(bucket: &str, object: &str) -> CacheKey {
        CacheKey {
            bucket: Arc::from(bucket),
            backend: Default::default(),
            object: object.to_owned(),
            version_id: None,
        }
    }

    fn config(max_item: u64, max_cache: u64) -> MemoryCacheConfig {
        MemoryCacheConfig {
            max_item_size: max_item,
            max_cache_size: max_cache,
            ..MemoryCacheConfig::default()
        }
    }

    #[test]
    fn entries_weigh_what_they_hold_within_a_cap() {
        let plain = object(1024);
        let bare = ByteWeighter.weight(&key("b", "k"), &plain);
        assert_eq!(bare, 1024 + ENTRY_BASE + 1);
        let mut meta = (*plain.meta).clone();
        meta.headers
            .insert("content-type", "text/plain".parse().unwrap());
        meta.etag = Some("\"abc\"".into());
        let headed = CachedObject {
            meta: Arc::new(meta.clone()),
            body: plain.body.clone(),
        };
        let long_key = key("b", &"k".repeat(100));
        assert_eq!(
            ByteWeighter.weight(&long_key, &headed),
            bare + 99 + HEADER_OVERHEAD + 22 + 5
        );
        meta.headers
            .insert("x-amz-meta-huge", "v".repeat(64 * 1024).parse().unwrap());
        let huge = CachedObject {
            meta: Arc::new(meta),
            body: plain.body.clone(),
        };
        assert_eq!(
            ByteWeighter.weight(&long_key, &huge),
            1024 + MAX_ENTRY_OVERHEAD
        );
    }

    #[test]
    fn an_item_exactly_at_the_limit_is_stored() {
        // The pitfall: with default sharding a 600 KiB item in a 1 MiB cache vanished.
        for (max_item, max_cache) in [
            (600 * 1024, 1024 * 1024),
            (1024 * 1024, 1024 * 1024),
            (10 * 1024 * 1024, 1024 * 1024 * 1024),
            (1, 1),
        ] {
            let tier = MemoryTier::new(&config(max_item, max_cache)).unwrap();
            assert!(tier.insert(key("b", "k"), object(max_item as usize)));
            let got = tier.get(&key("b", "k")).expect("stored");
            assert_eq!(got.body.len() as u64, max_item, "{max_item}/{max_cache}");
            assert!(!tier.insert(key("b", "big"), object(max_item as usize + 1)));
            assert!(tier.get(&key("b", "big")).is_none());
        }
    }

    #[test]
    fn a_hit_shares_the_payload() {
        let tier = MemoryTier::new(&config(1024, 1024 * 1024)).unwrap();
        let stored = object(100);
        tier.insert(key("b", "k"), stored.clone());
        let got = tier.get(&key("b", "k")).unwrap();
        assert_eq!(got.body.as_ptr(), stored.body.as_ptr());
    }

    #[test]
    fn evicts_by_weight_and_counts() {
        let tier = MemoryTier::new(&config(10 * 1024, 64 * 1024)).unwrap();
        for i in 0..40 {
            tier.insert(key("b", &i.to_string()), object(10 * 1024));
        }
        assert!(tier.bytes() <= 64 * 1024 + 10 * 1024, "{}", tier.bytes());
        assert!(tier.evictions() > 0);
        assert!(tier.items() < 40);
    }

    #[test]
    fn purges_by_scope() {
        let tier = MemoryTier::new(&config(1024, 1024 * 1024)).unwrap();
        for (b, k) in [("a", "x"), ("a", "y"), ("b", "x")] {
            tier.insert(key(b, k), object(10));
        }
        let scope = PurgeScope::Object {
            bucket: "a".into(),
            key: "x".into(),
        };
        assert_eq!(tier.purge(&scope), 1);
        assert_eq!(tier.bucket_usage("a"), (1, 10));
        assert_eq!(tier.purge(&PurgeScope::Bucket("a".into())), 1);
        assert_eq!(tier.items(), 1);
        assert_eq!(tier.purge(&PurgeScope::All), 1);
        assert_eq!(tier.items(), 0);
    }
}
