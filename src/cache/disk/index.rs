//! The disk tier's in-memory index: which entries exist, their sizes, their
//! keys (for purges) and which to evict when the files outgrow `max_size`.
//!
//! Recency and eviction are `quick_cache`'s (the crate the memory tier also
//! uses), weighted by file size with the tier's `max_size` as capacity. Its
//! policy is CLOCK-PRO-like, not strict LRU: an entry read since the clock
//! hand last passed gets a second chance, and once the index is full a new,
//! never-read entry is evicted before entries that were read again. The index
//! holds no file contents: a [`Lifecycle`] hook collects the digests the
//! cache evicts so the caller deletes their files, and the byte total is the
//! cache's own weight.
//!
//! Two settings make every entry the tier accepts (up to `max_size` bytes)
//! admissible, because `quick_cache` refuses an item heavier than one shard's
//! "hot" budget: one shard (each shard gets an equal part of the capacity),
//! and a hot allocation of 100%. One shard is one lock, as before this index
//! used `quick_cache`; reads take it shared.

use std::cell::RefCell;
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};

use crate::cache::PurgeScope;

/// A key digest (the file name, in hex).
pub(crate) type Digest = [u8; 32];

/// What the index knows about one entry file.
#[derive(Debug, Clone)]
pub(crate) struct IndexEntry {
    /// File size in bytes.
    pub(crate) size: u64,
    /// The bucket's configured name.
    pub(crate) bucket: Arc<str>,
    /// The object key (shared, so a hit's clone does not allocate).
    pub(crate) object: Arc<str>,
}

impl IndexEntry {
    fn is_in(&self, scope: &PurgeScope) -> bool {
        match scope {
            PurgeScope::All => true,
            PurgeScope::Bucket(bucket) => *self.bucket == **bucket,
            PurgeScope::Object { bucket, key } => *self.bucket == **bucket && *self.object == **key,
            // Found by its digest instead (see `Index::purge`).
            PurgeScope::Entry(_) => false,
        }
    }
}

/// Rough size of an entry, to size the cache's table of recently evicted keys.
const TYPICAL_ENTRY_BYTES: u64 = 64 * 1024;

/// Entries by digest, weighted by file size.
#[derive(Debug)]
pub(crate) struct Index {
    cache: Cache<Digest, IndexEntry, BySize, DefaultHashBuilder, CollectEvicted>,
}

impl Index {
    /// An empty index holding at most `max_bytes` of entry files.
    pub(crate) fn new(max_bytes: u64) -> std::io::Result<Self> {
        let estimated_items = (max_bytes / TYPICAL_ENTRY_BYTES).clamp(32, 1 << 20) as usize;
        let options = OptionsBuilder::new()
            .weight_capacity(max_bytes)
            .estimated_items_capacity(estimated_items)
            .shards(1)
            .hot_allocation(1.0)
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Self {
            cache: Cache::with_options(
                options,
                BySize,
                DefaultHashBuilder::default(),
                CollectEvicted,
            ),
        })
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.cache.len()
    }

    /// Total bytes of the entry files.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// Whether `digest` is indexed; counts as a use of it.
    pub(crate) fn touch(&self, digest: &Digest) -> bool {
        self.cache.get(digest).is_some()
    }

    /// Adds or replaces an entry; returns the digests evicted to make room
    /// (their files must be deleted). An entry above the capacity is not
    /// admitted and is returned among them; a replaced entry is not.
    pub(crate) fn insert(
        &self,
        digest: Digest,
        size: u64,
        bucket: Arc<str>,
        object: &str,
    ) -> Vec<Digest> {
        let entry = IndexEntry {
            size,
            bucket,
            object: object.into(),
        };
        let mut evicted = Vec::new();
        self.cache
            .insert_with_lifecycle(digest, entry, &mut evicted);
        // `quick_cache` also reports the value a replacement displaced; that
        // digest's file is the one just written, so it is reported only if
        // the new entry itself was not kept.
        evicted.retain(|evicted| *evicted != digest);
        if !self.cache.contains_key(&digest) {
            evicted.push(digest);
        }
        evicted
    }

    /// Forgets an entry; returns it if it was indexed.
    pub(crate) fn remove(&self, digest: &Digest) -> Option<IndexEntry> {
        self.cache.remove(digest).map(|(_, entry)| entry)
    }

    /// Removes every entry `scope` names; returns their digests.
    pub(crate) fn purge(&self, scope: &PurgeScope) -> Vec<Digest> {
        if let PurgeScope::Entry(key) = scope {
            let digest = key.digest();
            return self.remove(&digest).map(|_| digest).into_iter().collect();
        }
        let removed = RefCell::new(Vec::new());
        self.cache.retain(|digest, entry| {
            let keep = !entry.is_in(scope);
            if !keep {
                removed.borrow_mut().push(*digest);
            }
            keep
        });
        removed.into_inner()
    }
}

/// Weighs an entry by its file size (at least 1: `quick_cache` never
/// evicts zero-weight items).
#[derive(Debug, Clone, Copy)]
struct BySize;

impl Weighter<Digest, IndexEntry> for BySize {
    fn weight(&self, _digest: &Digest, entry: &IndexEntry) -> u64 {
        entry.size.max(1)
    }
}

/// Records the digests `quick_cache` evicts into the request's `Vec`.
#[derive(Debug, Clone, Copy)]
struct CollectEvicted;

impl Lifecycle<Digest, IndexEntry> for CollectEvicted {
    type RequestState = Vec<Digest>;

    fn on_evict(&self, evicted: &mut Vec<Digest>, digest: Digest, _entry: IndexEntry) {
        evicted.push(digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        [n; 32]
    }

    #[test]
    fn evicts_the_unused_before_the_used() {
        let index = Index::new(30).unwrap();
        let b: Arc<str> = Arc::from("b");
        for (n, name) in [(1, "one"), (2, "two"), (3, "three")] {
            assert!(index.insert(d(n), 10, b.clone(), name).is_empty());
        }
        assert!(index.touch(&d(1)));
        assert_eq!(index.insert(d(4), 10, b.clone(), "four"), vec![d(2)]);
        assert_eq!((index.len(), index.total_bytes()), (3, 30));
        assert!(!index.touch(&d(2)));
        // Not strict LRU: the newcomer never read since goes before the
        // older entries (scan resistance), then the oldest.
        assert_eq!(index.insert(d(5), 20, b, "five"), vec![d(4), d(3)]);
        assert_eq!((index.len(), index.total_bytes()), (2, 30));
    }

    #[test]
    fn an_entry_as_large_as_the_capacity_is_admitted() {
        let index = Index::new(1_000_000).unwrap();
        let b: Arc<str> = Arc::from("b");
        assert!(index.insert(d(1), 10, b.clone(), "small").is_empty());
        assert_eq!(index.insert(d(2), 1_000_000, b.clone(), "big"), vec![d(1)]);
        assert!(index.touch(&d(2)));
        assert_eq!((index.len(), index.total_bytes()), (1, 1_000_000));
        // One byte more is refused, and reported so its file is deleted.
        assert_eq!(
            index.insert(d(3), 1_000_001, b, "too big"),
            vec![d(3)],
            "refused entry reported as evicted"
        );
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn replacing_an_entry_adjusts_the_total() {
        let index = Index::new(1000).unwrap();
        index.insert(d(1), 10, Arc::from("b"), "o");
        assert!(index.insert(d(1), 25, Arc::from("b"), "o").is_empty());
        assert_eq!((index.len(), index.total_bytes()), (1, 25));
        assert_eq!(index.remove(&d(1)).map(|e| e.size), Some(25));
        assert_eq!((index.len(), index.total_bytes()), (0, 0));
    }

    #[test]
    fn purges_by_scope() {
        let index = Index::new(1000).unwrap();
        index.insert(d(1), 1, Arc::from("a"), "x");
        index.insert(d(2), 1, Arc::from("a"), "y");
        index.insert(d(3), 1, Arc::from("b"), "x");
        let object = PurgeScope::Object {
            bucket: "a".into(),
            key: "x".into(),
        };
        assert_eq!(index.purge(&object), vec![d(1)]);
        assert_eq!(index.purge(&PurgeScope::Bucket("b".into())), vec![d(3)]);
        assert_eq!(index.purge(&PurgeScope::All), vec![d(2)]);
        assert_eq!((index.len(), index.total_bytes()), (0, 0));
    }
}
