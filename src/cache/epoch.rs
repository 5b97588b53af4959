//! Purge epochs: how a purge wins over every cache write that started
//! before it.
//!
//! A fill reads the epoch of its key ([`PurgeEpochs::of`]) before it asks
//! S3, and every tier write of that fill checks it again right before it
//! stores: a purge covering the key bumps the epoch in between, so the
//! write is dropped. Object and entry purges bump one stripe (chosen by the
//! bucket name and object key), so forgetting one object does not cancel
//! every other fill; bucket and whole-cache purges bump the global counter.
//! An epoch is the sum of the global counter and the key's stripe: both
//! only grow, so any bump changes the sum.
//!
//! A check cannot recall a write already running (a disk file being
//! written, a Redis `SET` on the wire). So slower-tier writes run under a
//! shared [`write permit`](PurgeEpochs::write_permit), checked and stored
//! while holding it, and a purge, after bumping the epoch,
//! [`settles`](PurgeEpochs::settle): it waits until no write holds a
//! permit, then deletes. Every write that started before the bump has then
//! landed (and is deleted by the purge); every later one sees the new
//! epoch.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{RwLock, RwLockReadGuard};

use super::{CacheKey, PurgeScope};

/// Number of per-object epoch stripes.
const STRIPES: usize = 64;

/// The purge epochs of one store.
#[derive(Debug)]
pub(crate) struct PurgeEpochs {
    global: AtomicU64,
    stripes: [AtomicU64; STRIPES],
    hasher: std::hash::RandomState,
    gate: RwLock<()>,
}

impl Default for PurgeEpochs {
    fn default() -> Self {
        Self {
            global: AtomicU64::new(0),
            stripes: std::array::from_fn(|_| AtomicU64::new(0)),
            hasher: std::hash::RandomState::new(),
            gate: RwLock::new(()),
        }
    }
}

impl PurgeEpochs {
    /// The epoch of `key`: changes whenever a purge covering it happens.
    pub(crate) fn of(&self, key: &CacheKey) -> u64 {
        let stripe = &self.stripes[self.stripe(&key.bucket, &key.object)];
        self.global
            .load(Ordering::Acquire)
            .wrapping_add(stripe.load(Ordering::Acquire))
    }

    /// Records a purge of `scope`: writes begun before it will not store.
    pub(crate) fn bump(&self, scope: &PurgeScope) {
        let counter = match scope {
            PurgeScope::All | PurgeScope::Bucket(_) => &self.global,
            PurgeScope::Object { bucket, key } => &self.stripes[self.stripe(bucket, key)],
            PurgeScope::Entry(key) => &self.stripes[self.stripe(&key.bucket, &key.object)],
        };
        counter.fetch_add(1, Ordering::AcqRel);
    }

    /// Held by a slower-tier write from its epoch check until it stored.
    pub(crate) async fn write_permit(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().await
    }

    /// Waits until every write holding a permit has finished (call after
    /// [`bump`](Self::bump), before deleting).
    pub(crate) async fn settle(&self) {
        drop(self.gate.write().await);
    }

    fn stripe(&self, bucket: &str, object: &str) -> usize {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(bucket.as_bytes());
        hasher.write_u8(0);
        hasher.write(object.as_bytes());
        (hasher.finish() % STRIPES as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn key(object: &str) -> CacheKey {
        CacheKey {
            bucket: Arc::from("b"),
            backend: Default::default(),
            object: object.into(),
            version_id: None,
        }
    }

    #[test]
    fn a_purge_changes_the_epoch_of_what_it_covers() {
        let epochs = PurgeEpochs::default();
        let (a, b) = (key("a"), key("b"));
        let before = epochs.of(&a);
        epochs.bump(&PurgeScope::Entry(b.clone()));
        epochs.bump(&PurgeScope::Object {
            bucket: "b".into(),
            key: "a".into(),
        });
        assert_ne!(epochs.of(&a), before);
        let before = (epochs.of(&a), epochs.of(&b));
        epochs.bump(&PurgeScope::Bucket("b".into()));
        assert_ne!(epochs.of(&a), before.0);
        assert_ne!(epochs.of(&b), before.1);
    }

    #[tokio::test]
    async fn settle_waits_for_running_writes() {
        let epochs = Arc::new(PurgeEpochs::default());
        let permit = epochs.write_permit().await;
        let settling = tokio::spawn({
            let epochs = epochs.clone();
            async move { epochs.settle().await }
        });
        tokio::task::yield_now().await;
        assert!(!settling.is_finished());
        drop(permit);
        settling.await.unwrap();
    }
}
