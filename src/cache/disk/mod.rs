//! The disk tier: one file per entry under `cache_dir`, surviving restarts.
//!
//! Each file holds one [`codec`] entry (metadata, body,
//! SHA-256), named by the key's digest. Writes go to a temp file renamed into
//! place. An in-memory index (rebuilt at startup by reading only the file
//! headers) knows each entry's size and key, so a miss costs no disk
//! access, purges by bucket or object need no directory walk, and the total
//! stays under `max_size`: the index is a `quick_cache` weighted by file
//! size, and the files of the entries it evicts are deleted (see `index.rs`
//! for its CLOCK-PRO-like policy). At startup the newest files that fit are
//! indexed, oldest first, and older ones are deleted.
//! An entry that fails its checksum when read is deleted and reported as
//! [`TierError::Corrupt`] (the caller counts it as a miss).
//!
//! Freshness is the caller's business (it may serve a stale entry when S3
//! fails), so the tier returns expired entries; only entries expired for
//! longer than the `expired_grace` given at open are deleted, on read and at
//! startup.
//!
//! All file I/O runs on Tokio's blocking pool.

mod files;
mod index;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use self::index::{Digest, Index};
use super::codec;
use super::tier::{CacheTier, LookupCounters, PurgeScope, TierError, TierFuture, TierStats};
use super::{CacheKey, CachedObject};
use crate::config::{CacheTierKind, DiskCacheConfig};

/// The disk cache tier; cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct DiskTier {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    max_size: u64,
    expired_grace: Duration,
    index: Index,
    lookups: LookupCounters,
    evictions: AtomicU64,
}

impl DiskTier {
    /// Opens the tier over `config.cache_dir` (created if missing) and
    /// rebuilds its index from the files there.
    ///
    /// `expired_grace` is how long past `fresh_until` an entry is kept
    /// (typically the stale-if-error window); older ones are deleted.
    pub async fn open(
        config: &DiskCacheConfig,
        expired_grace: Duration,
    ) -> Result<Self, TierError> {
        let config = config.clone();
        blocking(move || Self::open_blocking(&config, expired_grace)).await
    }

    /// [`open`](Self::open) for callers outside an async context.
    pub fn open_blocking(
        config: &DiskCacheConfig,
        expired_grace: Duration,
    ) -> Result<Self, TierError> {
        let expired_before = SystemTime::now()
            .checked_sub(expired_grace)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let scanned = files::scan(&config.cache_dir, expired_before)?;
        let index = Index::new(config.max_size)?;
        let (kept, mut evicted) = newest_that_fit(scanned.entries, config.max_size);
        for entry in kept {
            evicted.extend(index.insert(
                entry.digest,
                entry.head.encoded_len,
                entry.head.key.bucket.clone(),
                &entry.head.key.object,
            ));
        }
        files::remove_entries(&config.cache_dir, &evicted);
        if scanned.deleted > 0 {
            tracing::warn!(
                dir = %config.cache_dir.display(),
                deleted = scanned.deleted,
                "disk cache: deleted unreadable or long-expired entry files at startup"
            );
        }
        Ok(Self {
            inner: Arc::new(Inner {
                dir: config.cache_dir.clone(),
                max_size: config.max_size,
                expired_grace,
                index,
                lookups: LookupCounters::default(),
                evictions: AtomicU64::new(evicted.len() as u64),
            }),
        })
    }

    /// The directory holding the entry files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Where the entry for `key` is (or would be) stored.
    pub fn entry_path(&self, key: &CacheKey) -> PathBuf {
        files::entry_path(&self.inner.dir, &key.digest())
    }

    async fn lookup(&self, key: &CacheKey) -> Result<Option<CachedObject>, TierError> {
        let digest = key.digest();
        if !self.inner.index.touch(&digest) {
            return Ok(None);
        }
        let path = files::entry_path(&self.inner.dir, &digest);
        let read = blocking(move || std::fs::read(path).map_err(TierError::from)).await;
        let bytes = match read {
            Ok(bytes) => Bytes::from(bytes),
            Err(TierError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                self.inner.index.remove(&digest);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let decoded = codec::decode(bytes).and_then(|d| {
            if d.key == *key {
                Ok(d)
            } else {
                Err(TierError::Corrupt("entry belongs to another key".into()))
            }
        });
        let entry = match decoded {
            Ok(entry) => entry,
            Err(e) => {
                self.forget(digest).await;
                return Err(e);
            }
        };
        if self.inner.is_long_expired(entry.object.meta.fresh_until) {
            self.forget(digest).await;
            return Ok(None);
        }
        Ok(Some(entry.object))
    }

    async fn store(&self, key: &CacheKey, object: CachedObject) -> Result<(), TierError> {
        let parts = codec::encode_parts(key, &object);
        let size = parts.len();
        let digest = key.digest();
        if size > self.inner.max_size {
            // Not stored; nor may an older version of it stay.
            if self.inner.index.remove(&digest).is_some() {
                self.forget(digest).await;
            }
            return Ok(());
        }
        let inner = self.inner.clone();
        let bucket = key.bucket.clone();
        let object_key = key.object.clone();
        blocking(move || {
            files::write_atomic(&inner.dir, &digest, &parts)?;
            let evicted = inner.index.insert(digest, size, bucket, &object_key);
            inner
                .evictions
                .fetch_add(evicted.len() as u64, Ordering::Relaxed);
            files::remove_entries(&inner.dir, &evicted);
            Ok(())
        })
        .await
    }

    async fn remove_scope(&self, scope: &PurgeScope) -> Result<u64, TierError> {
        let removed = self.inner.index.purge(scope);
        let count = removed.len() as u64;
        let dir = self.inner.dir.clone();
        blocking(move || {
            files::remove_entries(&dir, &removed);
            Ok(())
        })
        .await?;
        Ok(count)
    }

    /// Drops an entry from the index and deletes its file.
    async fn forget(&self, digest: Digest) {
        self.inner.index.remove(&digest);
        let dir = self.inner.dir.clone();
        let deleted = blocking(move || Ok(files::remove_entry(&dir, &digest)?)).await;
        if let Err(e) = deleted {
            tracing::warn!(error = %e, "disk cache: could not delete an entry file");
        }
    }
}

impl Inner {
    fn is_long_expired(&self, fresh_until: SystemTime) -> bool {
        fresh_until
            .checked_add(self.expired_grace)
            .is_some_and(|keep_until| keep_until < SystemTime::now())
    }
}

impl CacheTier for DiskTier {
    fn kind(&self) -> CacheTierKind {
        CacheTierKind::Disk
    }

    fn get<'a>(&'a self, key: &'a CacheKey) -> TierFuture<'a, Option<CachedObject>> {
        Box::pin(async move {
            let found = self.lookup(key).await;
            self.inner.lookups.record(&found);
            found
        })
    }

    fn put<'a>(&'a self, key: &'a CacheKey, object: CachedObject) -> TierFuture<'a, ()> {
        Box::pin(self.store(key, object))
    }

    fn purge<'a>(&'a self, scope: &'a PurgeScope) -> TierFuture<'a, u64> {
        Box::pin(self.remove_scope(scope))
    }

    fn stats(&self) -> TierStats {
        let (items, bytes) = (
            self.inner.index.len() as u64,
            self.inner.index.total_bytes(),
        );
        TierStats {
            evictions: self.inner.evictions.load(Ordering::Relaxed),
            items,
            bytes,
            ..self.inner.lookups.stats()
        }
    }
}

/// Splits scanned entries (oldest first) into the newest ones whose sizes
/// add up to at most `max_size`, still oldest first, and the digests of the
/// older rest, whose files are to be deleted.
fn newest_that_fit(
    mut scanned: Vec<files::ScannedEntry>,
    max_size: u64,
) -> (Vec<files::ScannedEntry>, Vec<Digest>) {
    let mut total = 0u64;
    let newest_kept = scanned
        .iter()
        .rev()
        .take_while(|entry| {
            total = total.saturating_add(entry.head.encoded_len);
            total <= max_size
        })
        .count();
    let kept = scanned.split_off(scanned.len() - newest_kept);
    (kept, scanned.iter().map(|entry| entry.digest).collect())
}

/// Runs blocking file work on Tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, TierError> + Send + 'static,
) -> Result<T, TierError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| TierError::Io(std::io::Error::other(e)))?
}
