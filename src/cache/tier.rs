//! The interface every slower cache tier (disk, Redis) implements.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{CacheKey, CachedObject};
use crate::config::CacheTierKind;

/// The future a tier operation returns.
pub type TierFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, TierError>> + Send + 'a>>;

/// Why a tier operation failed; the cache treats every failure as a miss and counts it.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    /// A file operation failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// Redis answered with an error or the connection failed.
    #[error("redis: {0}")]
    Redis(String),
    /// The operation did not finish within the tier's timeout.
    #[error("timed out")]
    Timeout,
    /// A stored entry failed its checksum or could not be decoded.
    #[error("corrupt entry: {0}")]
    Corrupt(String),
}

/// What a purge removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PurgeScope {
    /// Everything.
    All,
    /// Every entry of one bucket (by configured name).
    Bucket(String),
    /// Every version of one object.
    Object {
        /// The bucket's configured name.
        bucket: String,
        /// The object key.
        key: String,
    },
    /// One entry: one object, version and backend (an object S3 no longer
    /// has or that changed; see `Store::forget`).
    Entry(CacheKey),
}

impl PurgeScope {
    /// Whether the entry stored under `key` is one this scope names.
    pub fn covers(&self, key: &CacheKey) -> bool {
        match self {
            Self::All => true,
            Self::Bucket(bucket) => **bucket == *key.bucket,
            Self::Object {
                bucket,
                key: object,
            } => **bucket == *key.bucket && *object == key.object,
            Self::Entry(entry) => entry == key,
        }
    }
}

/// Counters and sizes of one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierStats {
    /// Lookups that found a usable entry.
    pub hits: u64,
    /// Lookups that found nothing (or failed).
    pub misses: u64,
    /// Entries removed to stay within the size limit.
    pub evictions: u64,
    /// Entries held.
    pub items: u64,
    /// Bytes held.
    pub bytes: u64,
}

/// A cache tier slower than memory (disk, Redis).
pub trait CacheTier: Send + Sync + std::fmt::Debug {
    /// Which tier this is.
    fn kind(&self) -> CacheTierKind;
    /// The entry stored under `key`, if any and intact.
    fn get<'a>(&'a self, key: &'a CacheKey) -> TierFuture<'a, Option<CachedObject>>;
    /// Stores (or replaces) the entry under `key`.
    fn put<'a>(&'a self, key: &'a CacheKey, object: CachedObject) -> TierFuture<'a, ()>;
    /// Removes what `scope` names; returns how many entries went.
    fn purge<'a>(&'a self, scope: &'a PurgeScope) -> TierFuture<'a, u64>;
    /// Current counters and sizes.
    fn stats(&self) -> TierStats;
}

/// Hit and miss counters of a tier's lookups, shared by the tier implementations.
#[derive(Debug, Default)]
pub(crate) struct LookupCounters {
    hits: AtomicU64,
    misses: AtomicU64,
}

impl LookupCounters {
    /// Counts one lookup: a hit when it found an entry, else (absent or failed) a miss.
    pub(crate) fn record<T>(&self, found: &Result<Option<T>, TierError>) {
        let counter = match found {
            Ok(Some(_)) => &self.hits,
            _ => &self.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Stats with the hits and misses filled in (sizes are the tier's to add).
    pub(crate) fn stats(&self) -> TierStats {
        TierStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            ..TierStats::default()
        }
    }
}
