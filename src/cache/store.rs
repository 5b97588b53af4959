//! The store: the memory tier and the slower tiers in lookup order, the
//! background fill queue, coalescing and counters.
//!
//! Lives in [`super::CacheShared`], so it outlives configuration reloads.
//! Reads walk the tiers in the configured order; a hit in a slower tier is
//! promoted to the faster ones (memory at once, it costs nothing; disk and
//! Redis through the queue). Fills write memory synchronously and the slower
//! tiers in the background, through a bounded queue that drops (and counts)
//! rather than ever blocking a request.
//!
//! Purges bump an epoch (see `epoch.rs`): a fill, revalidation or promotion
//! that started before a purge is not stored after it in any tier, and a
//! purge waits for slower-tier writes already running before it deletes, so
//! a purge is never undone by a transfer or a write that was already under
//! way. [`Store::forget`] is such a purge for one entry, in every tier and,
//! through the Redis purge channel, in every instance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use metrics::Counter;
use tokio::sync::mpsc;

use super::coalesce::Coalescer;
use super::epoch::PurgeEpochs;
use super::memory::MemoryTier;
use super::redis::{PurgeSubscription, RedisTier};
use super::stats::BucketCounters;
use super::tiers::SlowerTiers;
use super::{CacheKey, CacheTier, CachedObject, PurgeScope, TierStats};
use crate::config::{CacheConfig, CacheTierKind};
use crate::telemetry::metrics::{
    CACHE_BYTES, CACHE_ERRORS_TOTAL, CACHE_FILL_DROPPED_TOTAL, CACHE_HITS_TOTAL, CACHE_ITEMS,
};

/// Background writes waiting for the slower tiers; beyond this they are dropped.
const FILL_QUEUE_CAPACITY: usize = 256;

/// One tier in lookup order.
#[derive(Debug)]
enum Tier {
    Memory,
    Slower(Arc<dyn CacheTier>),
}

/// An entry found by a lookup, and the tier it came from.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// The entry.
    pub(crate) object: CachedObject,
    /// Where it was found.
    pub(crate) tier: CacheTierKind,
}

/// The cache store.
#[derive(Debug)]
pub(crate) struct Store {
    config: CacheConfig,
    tiers: Vec<Tier>,
    memory: Option<MemoryTier>,
    slower: Vec<Arc<dyn CacheTier>>,
    pub(crate) coalescer: Arc<Coalescer>,
    epochs: Arc<PurgeEpochs>,
    fills: FillQueue,
    buckets: Mutex<HashMap<Arc<str>, Arc<BucketCounters>>>,
    memory_hits: AtomicU64,
    memory_misses: AtomicU64,
    hit_series: HashMap<CacheTierKind, Counter>,
    /// The Redis tier by its type, for purge broadcasts.
    redis: Option<Arc<RedisTier>>,
    /// Receives other instances' purges while the store lives.
    subscription: Mutex<Option<PurgeSubscription>>,
}

impl Store {
    /// A store for `config` whose slower tiers are `slower` (in any order;
    /// they are looked up in the order `config.layers` gives).
    pub(crate) fn new(config: &CacheConfig, slower: SlowerTiers) -> Result<Self, String> {
        let SlowerTiers {
            tiers: slower,
            redis,
        } = slower;
        let memory = if config.layers.contains(&CacheTierKind::Memory) {
            Some(MemoryTier::new(&config.memory)?)
        } else {
            None
        };
        let mut tiers = Vec::with_capacity(config.layers.len());
        let mut ordered = Vec::with_capacity(slower.len());
        for kind in &config.layers {
            match kind {
                CacheTierKind::Memory => tiers.push(Tier::Memory),
                kind => {
                    let tier = slower
                        .iter()
                        .find(|t| t.kind() == *kind)
                        .ok_or_else(|| format!("the {} tier was not built", kind.as_str()))?;
                    tiers.push(Tier::Slower(tier.clone()));
                    ordered.push(tier.clone());
                }
            }
        }
        let hit_series = config
            .layers
            .iter()
            .map(|kind| {
                (
                    *kind,
                    metrics::counter!(CACHE_HITS_TOTAL, "tier" => kind.as_str()),
                )
            })
            .collect();
        let epochs = Arc::new(PurgeEpochs::default());
        Ok(Self {
            config: config.clone(),
            tiers,
            memory,
            slower: ordered,
            coalescer: Arc::new(Coalescer::default()),
            fills: FillQueue::new(epochs.clone()),
            epochs,
            buckets: Mutex::new(HashMap::new()),
            memory_hits: AtomicU64::new(0),
            memory_misses: AtomicU64::new(0),
            hit_series,
            redis,
            subscription: Mutex::new(None),
        })
    }

    /// With Redis configured: purges what other instances purge (and
    /// forget) from this instance's tiers. Needs a runtime; a no-op without one.
    pub(crate) fn follow_remote_purges(self: &Arc<Self>) {
        let Some(redis) = &self.redis else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (sender, mut receiver) = mpsc::channel(64);
        let subscription = redis.subscribe_purges(sender);
        let store = Arc::downgrade(self);
        runtime.spawn(async move {
            while let Some(scope) = receiver.recv().await {
                let Some(store) = store.upgrade() else {
                    break;
                };
                tracing::info!(?scope, "cache purge from another instance");
                store.purge_local(&scope).await;
            }
        });
        *self.subscription.lock().unwrap_or_else(|p| p.into_inner()) = Some(subscription);
    }

    /// Purges what another instance purged from this instance's tiers.
    ///
    /// Redis too, although the other instance purged it already: a write
    /// this instance had under way may have reached Redis after that purge.
    /// Once the epoch is bumped and running writes have settled, this
    /// second pass removes it, and no older write of this instance follows.
    async fn purge_local(&self, scope: &PurgeScope) {
        for (tier, result) in self.purge(scope).await {
            if let Err(error) = result {
                tracing::warn!(tier = tier.as_str(), %error, "remote purge failed");
            }
        }
    }

    /// Tells the other instances sharing Redis to purge `scope`; `None`
    /// without Redis, else whether the broadcast went out.
    pub(crate) async fn broadcast_purge(&self, scope: &PurgeScope) -> Option<Result<(), String>> {
        let redis = self.redis.as_ref()?;
        Some(redis.publish_purge(scope).await.map_err(|error| {
            metrics::counter!(CACHE_ERRORS_TOTAL, "tier" => "redis").increment(1);
            error.to_string()
        }))
    }

    /// The configuration the tiers were built from.
    pub(crate) fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// The counters of `bucket` (created on first use, kept across reloads).
    pub(crate) fn bucket_counters(&self, bucket: &Arc<str>) -> Arc<BucketCounters> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .entry(bucket.clone())
            .or_insert_with(|| Arc::new(BucketCounters::new(bucket)))
            .clone()
    }

    /// The counters of every bucket seen so far.
    pub(crate) fn all_bucket_counters(&self) -> Vec<(Arc<str>, Arc<BucketCounters>)> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The purge epoch of `key`: read it before fetching, pass it back to
    /// [`Store::insert`].
    pub(crate) fn epoch_for(&self, key: &CacheKey) -> u64 {
        self.epochs.of(key)
    }

    /// Only the memory tier (no await): the fast path and the leader's re-check.
    pub(crate) fn memory_get(&self, key: &CacheKey) -> Option<CachedObject> {
        self.memory.as_ref()?.get(key)
    }

    /// A fresh entry from the memory tier when it is the first tier looked
    /// up (the synchronous hot path); `None` sends the request the slow way,
    /// which counts the miss.
    pub(crate) fn fresh_memory_hit(&self, key: &CacheKey) -> Option<CachedObject> {
        if !matches!(self.tiers.first(), Some(Tier::Memory)) {
            return None;
        }
        let object = self
            .memory
            .as_ref()?
            .get(key)
            .filter(|o| std::time::SystemTime::now() < o.meta.fresh_until)?;
        self.memory_hits.fetch_add(1, Ordering::Relaxed);
        if let Some(series) = self.hit_series.get(&CacheTierKind::Memory) {
            series.increment(1);
        }
        Some(object)
    }

    /// Looks `key` up in every tier, in order; promotes a hit to the faster tiers.
    pub(crate) async fn lookup(&self, key: &CacheKey) -> Option<Found> {
        // Before reading: a purge during the read stops the promotion.
        let epoch = self.epochs.of(key);
        for (index, tier) in self.tiers.iter().enumerate() {
            let (kind, found) = match tier {
                Tier::Memory => {
                    let found = self.memory.as_ref().and_then(|m| m.get(key));
                    let counter = if found.is_some() {
                        &self.memory_hits
                    } else {
                        &self.memory_misses
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    (CacheTierKind::Memory, found)
                }
                Tier::Slower(tier) => {
                    let found = match tier.get(key).await {
                        Ok(found) => found,
                        Err(error) => {
                            tracing::debug!(tier = tier.kind().as_str(), %error, "cache read failed");
                            metrics::counter!(CACHE_ERRORS_TOTAL, "tier" => tier.kind().as_str())
                                .increment(1);
                            None
                        }
                    };
                    (tier.kind(), found)
                }
            };
            if let Some(object) = found {
                if let Some(series) = self.hit_series.get(&kind) {
                    series.increment(1);
                }
                self.promote(index, key, &object, epoch);
                return Some(Found { object, tier: kind });
            }
        }
        None
    }

    /// Copies an entry found at `index` into the tiers before it, unless
    /// a purge happened since `epoch`.
    fn promote(&self, index: usize, key: &CacheKey, object: &CachedObject, epoch: u64) {
        let mut slower = Vec::new();
        for tier in &self.tiers[..index] {
            match tier {
                Tier::Memory => {
                    if !self.insert_memory(key, object, epoch) {
                        return;
                    }
                }
                Tier::Slower(tier) => slower.push(tier.clone()),
            }
        }
        if !slower.is_empty() {
            self.fills
                .enqueue(key.clone(), object.clone(), slower, epoch);
        }
    }

    /// The tiers a fill stores into, in lookup order (`memory,disk`), for
    /// the `cache.fill` span (made for sampled requests only).
    pub(crate) fn tier_names(&self) -> String {
        let names: Vec<&str> = self.config.layers.iter().map(|k| k.as_str()).collect();
        names.join(",")
    }

    /// Stores `object` in every tier unless a purge happened since `epoch`:
    /// memory now, the slower tiers in the background (each checks the
    /// epoch again right before it stores). Returns whether it was stored.
    pub(crate) fn insert(&self, key: &CacheKey, object: &CachedObject, epoch: u64) -> bool {
        if !self.insert_memory(key, object, epoch) {
            return false;
        }
        if !self.slower.is_empty() {
            self.fills
                .enqueue(key.clone(), object.clone(), self.slower.clone(), epoch);
        }
        true
    }

    /// The memory part of a store: checked before and after, so a purge
    /// running meanwhile on another thread cannot be undone either.
    fn insert_memory(&self, key: &CacheKey, object: &CachedObject, epoch: u64) -> bool {
        if self.epochs.of(key) != epoch {
            return false;
        }
        let Some(memory) = &self.memory else {
            return true;
        };
        memory.insert(key.clone(), object.clone());
        let kept = self.epochs.of(key) == epoch;
        if !kept {
            memory.remove(key);
        }
        self.update_memory_gauges();
        kept
    }

    /// Drops `key`'s entry from every tier and tells the other instances to
    /// drop it (an object S3 no longer has, refuses, or changed), so no tier
    /// can serve it again, not even stale while S3 is down.
    ///
    /// `fetched_at` is the epoch read before the request that revealed the
    /// change; the result is the epoch under which that request's answer
    /// may be stored (a purge since `fetched_at` still wins).
    pub(crate) async fn forget(&self, key: &CacheKey, fetched_at: u64) -> u64 {
        let scope = PurgeScope::Entry(key.clone());
        let before = self.epochs.of(key);
        self.purge_memory(&scope);
        let after = if before == fetched_at {
            before.wrapping_add(1)
        } else {
            fetched_at
        };
        for (tier, result) in self.purge_slower(&scope).await {
            if let Err(error) = result {
                tracing::warn!(tier = tier.as_str(), %error, "cache entry not forgotten");
            }
        }
        if let Some(Err(error)) = self.broadcast_purge(&scope).await {
            tracing::warn!(%error, "cache forget not broadcast");
        }
        after
    }

    /// Removes what `scope` names from every tier; returns the count per tier.
    pub(crate) async fn purge(
        &self,
        scope: &PurgeScope,
    ) -> Vec<(CacheTierKind, Result<u64, String>)> {
        let mut removed = Vec::with_capacity(self.tiers.len());
        let memory = self.purge_memory(scope);
        if self.memory.is_some() {
            removed.push((CacheTierKind::Memory, Ok(memory)));
        }
        removed.extend(self.purge_slower(scope).await);
        removed
    }

    /// Removes what `scope` names from the slower tiers, once the writes
    /// already running have landed (the epoch was bumped by
    /// [`Store::purge_memory`], so no older write starts after).
    async fn purge_slower(&self, scope: &PurgeScope) -> Vec<(CacheTierKind, Result<u64, String>)> {
        self.epochs.settle().await;
        let mut removed = Vec::with_capacity(self.slower.len());
        for tier in &self.slower {
            let result = tier.purge(scope).await.map_err(|error| {
                metrics::counter!(CACHE_ERRORS_TOTAL, "tier" => tier.kind().as_str()).increment(1);
                error.to_string()
            });
            removed.push((tier.kind(), result));
        }
        removed
    }

    /// Removes what `scope` names from memory only (the synchronous part of
    /// a purge); fills and writes begun before are not stored afterwards.
    pub(crate) fn purge_memory(&self, scope: &PurgeScope) -> u64 {
        self.epochs.bump(scope);
        let removed = self.memory.as_ref().map_or(0, |m| m.purge(scope));
        self.update_memory_gauges();
        removed
    }

    /// Purges `scope` from memory now and from the slower tiers in the
    /// background (reloads, which cannot await), broadcasting it.
    pub(crate) fn purge_detached(self: &Arc<Self>, scope: PurgeScope) {
        self.purge_memory(&scope);
        if self.slower.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let store = self.clone();
            runtime.spawn(async move {
                store.purge_slower(&scope).await;
                store.broadcast_purge(&scope).await;
            });
        } else {
            tracing::warn!(?scope, "no runtime: the slower cache tiers were not purged");
        }
    }

    /// Counters and sizes of every tier, in lookup order.
    pub(crate) fn tier_stats(&self) -> Vec<(CacheTierKind, TierStats)> {
        self.tiers
            .iter()
            .map(|tier| match tier {
                Tier::Memory => (CacheTierKind::Memory, self.memory_stats()),
                Tier::Slower(tier) => (tier.kind(), tier.stats()),
            })
            .collect()
    }

    fn memory_stats(&self) -> TierStats {
        let Some(memory) = &self.memory else {
            return TierStats::default();
        };
        TierStats {
            hits: self.memory_hits.load(Ordering::Relaxed),
            misses: self.memory_misses.load(Ordering::Relaxed),
            evictions: memory.evictions(),
            items: memory.items(),
            bytes: memory.bytes(),
        }
    }

    /// Items and body bytes the memory tier holds for `bucket`.
    pub(crate) fn memory_usage(&self, bucket: &str) -> (u64, u64) {
        self.memory
            .as_ref()
            .map_or((0, 0), |m| m.bucket_usage(bucket))
    }

    fn update_memory_gauges(&self) {
        if let Some(memory) = &self.memory {
            metrics::gauge!(CACHE_ITEMS, "tier" => "memory").set(memory.items() as f64);
            metrics::gauge!(CACHE_BYTES, "tier" => "memory").set(memory.bytes() as f64);
        }
    }
}

/// One background write.
struct FillJob {
    key: CacheKey,
    object: CachedObject,
    tiers: Vec<Arc<dyn CacheTier>>,
    epoch: u64,
}

/// The bounded queue of writes to the slower tiers, drained by one task.
#[derive(Debug)]
struct FillQueue {
    sender: mpsc::Sender<FillJob>,
    receiver: Mutex<Option<mpsc::Receiver<FillJob>>>,
    started: OnceLock<()>,
    epochs: Arc<PurgeEpochs>,
}

impl std::fmt::Debug for FillJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FillJob")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl FillQueue {
    fn new(epochs: Arc<PurgeEpochs>) -> Self {
        let (sender, receiver) = mpsc::channel(FILL_QUEUE_CAPACITY);
        Self {
            sender,
            receiver: Mutex::new(Some(receiver)),
            started: OnceLock::new(),
            epochs,
        }
    }

    /// Queues a write; when the queue is full the write is dropped and counted.
    fn enqueue(
        &self,
        key: CacheKey,
        object: CachedObject,
        tiers: Vec<Arc<dyn CacheTier>>,
        epoch: u64,
    ) {
        self.start();
        let job = FillJob {
            key,
            object,
            tiers,
            epoch,
        };
        if self.sender.try_send(job).is_err() {
            metrics::counter!(CACHE_FILL_DROPPED_TOTAL).increment(1);
        }
    }

    /// Spawns the writer on the current runtime, once (the store may be built outside one).
    fn start(&self) {
        if self.started.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut receiver = self.receiver.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(receiver) = receiver.take() {
            runtime.spawn(write_fills(receiver, self.epochs.clone()));
        }
        let _ = self.started.set(());
    }
}

/// Writes queued fills one at a time until the store is dropped.
async fn write_fills(mut receiver: mpsc::Receiver<FillJob>, epochs: Arc<PurgeEpochs>) {
    while let Some(job) = receiver.recv().await {
        for tier in &job.tiers {
            // Checked right before storing, under the permit a purge waits
            // for: a purge since the fill started wins, even one that began
            // while an earlier tier was being written.
            let _permit = epochs.write_permit().await;
            if epochs.of(&job.key) != job.epoch {
                break;
            }
            let kind = tier.kind().as_str();
            match tier.put(&job.key, job.object.clone()).await {
                Ok(()) => {
                    let stats = tier.stats();
                    metrics::gauge!(CACHE_ITEMS, "tier" => kind).set(stats.items as f64);
                    metrics::gauge!(CACHE_BYTES, "tier" => kind).set(stats.bytes as f64);
                }
                Err(error) => {
                    tracing::debug!(tier = kind, %error, "cache write failed");
                    metrics::counter!(CACHE_ERRORS_TOTAL, "tier" => kind).increment(1);
                }
            }
        }
    }
}
