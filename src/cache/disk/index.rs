//! The disk tier's in-memory index: which entries exist, their sizes, their
//! keys (for purges) and their recency (for eviction).
//!
//! A `HashMap` by digest plus a `BTreeMap` by last-access tick gives O(log n)
//! touch, insert and "oldest first" eviction. It is an index of files, not a
//! cache of values: evicting from it must also delete a file and keep a byte
//! total that includes entries found on disk at startup, which is why it is
//! not a general-purpose LRU cache crate.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::cache::PurgeScope;

/// A key digest (the file name, in hex).
pub(crate) type Digest = [u8; 32];

/// What the index knows about one entry file.
#[derive(Debug, Clone)]
pub(crate) struct IndexEntry {
    /// File size in bytes.
    pub(crate) size: u64,
    /// Last access tick (larger is more recent).
    tick: u64,
    /// The bucket's configured name.
    pub(crate) bucket: Arc<str>,
    /// The object key.
    pub(crate) object: Box<str>,
}

/// Entries by digest, ordered by recency, with their byte total.
#[derive(Debug, Default)]
pub(crate) struct Index {
    entries: HashMap<Digest, IndexEntry>,
    by_age: BTreeMap<u64, Digest>,
    total_bytes: u64,
    next_tick: u64,
}

impl Index {
    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Total bytes of the entry files.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Whether `digest` is indexed; marks it most recently used.
    pub(crate) fn touch(&mut self, digest: &Digest) -> bool {
        let tick = self.tick();
        match self.entries.get_mut(digest) {
            Some(entry) => {
                self.by_age.remove(&entry.tick);
                entry.tick = tick;
                self.by_age.insert(tick, *digest);
                true
            }
            None => false,
        }
    }

    /// Adds or replaces an entry as the most recently used.
    pub(crate) fn insert(&mut self, digest: Digest, size: u64, bucket: Arc<str>, object: &str) {
        self.remove(&digest);
        let tick = self.tick();
        self.by_age.insert(tick, digest);
        self.total_bytes += size;
        self.entries.insert(
            digest,
            IndexEntry {
                size,
                tick,
                bucket,
                object: object.into(),
            },
        );
    }

    /// Forgets an entry; returns it if it was indexed.
    pub(crate) fn remove(&mut self, digest: &Digest) -> Option<IndexEntry> {
        let entry = self.entries.remove(digest)?;
        self.by_age.remove(&entry.tick);
        self.total_bytes -= entry.size;
        Some(entry)
    }

    /// Removes least recently used entries until the total is at most
    /// `max_bytes`; returns their digests (whose files must be deleted).
    pub(crate) fn evict_to(&mut self, max_bytes: u64) -> Vec<Digest> {
        let mut evicted = Vec::new();
        while self.total_bytes > max_bytes {
            let Some((_, digest)) = self.by_age.pop_first() else {
                break;
            };
            if let Some(entry) = self.entries.remove(&digest) {
                self.total_bytes -= entry.size;
            }
            evicted.push(digest);
        }
        evicted
    }

    /// Removes every entry `scope` names; returns their digests.
    pub(crate) fn purge(&mut self, scope: &PurgeScope) -> Vec<Digest> {
        let matching: Vec<Digest> = self
            .entries
            .iter()
            .filter(|(_, e)| match scope {
                PurgeScope::All => true,
                PurgeScope::Bucket(bucket) => *e.bucket == **bucket,
                PurgeScope::Object { bucket, key } => *e.bucket == **bucket && *e.object == **key,
            })
            .map(|(d, _)| *d)
            .collect();
        for digest in &matching {
            self.remove(digest);
        }
        matching
    }

    fn tick(&mut self) -> u64 {
        self.next_tick += 1;
        self.next_tick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        [n; 32]
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let mut index = Index::default();
        let b: Arc<str> = Arc::from("b");
        index.insert(d(1), 10, b.clone(), "one");
        index.insert(d(2), 10, b.clone(), "two");
        index.insert(d(3), 10, b.clone(), "three");
        assert!(index.touch(&d(1)));
        assert_eq!(index.evict_to(20), vec![d(2)]);
        assert_eq!(index.total_bytes(), 20);
        assert_eq!(index.evict_to(0), vec![d(3), d(1)]);
        assert_eq!(index.len(), 0);
    }

    #[test]
    fn replacing_an_entry_adjusts_the_total() {
        let mut index = Index::default();
        index.insert(d(1), 10, Arc::from("b"), "o");
        index.insert(d(1), 25, Arc::from("b"), "o");
        assert_eq!((index.len(), index.total_bytes()), (1, 25));
    }

    #[test]
    fn purges_by_scope() {
        let mut index = Index::default();
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
