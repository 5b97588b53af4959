//! The Redis Cluster side of the tier: generation numbers and purges that
//! never scan a node (see `keys.rs` for the key names, `generation.rs`
//! for why generations).

use super::RedisTier;
use super::keys::slotted::{self, Gens};
use crate::cache::{CacheKey, PurgeScope, TierError};

impl RedisTier {
    /// The current whole-cache and `bucket` generations (remembered, or
    /// read both at once).
    pub(super) async fn generations(&self, bucket: &str) -> Result<Gens, TierError> {
        let all = slotted::all_generation(&self.inner.prefix);
        let bucket = slotted::bucket_generation(&self.inner.prefix, bucket);
        let (all, bucket) = tokio::try_join!(self.generation(&all), self.generation(&bucket))?;
        Ok(Gens { all, bucket })
    }

    /// The number under `counter` (0 before the first purge).
    async fn generation(&self, counter: &str) -> Result<u64, TierError> {
        if let Some(value) = self.inner.generations.get(counter) {
            return Ok(value);
        }
        let value: Option<u64> = self.run(redis::cmd("GET").arg(counter)).await?;
        let value = value.unwrap_or(0);
        self.inner.generations.set(counter, value);
        Ok(value)
    }

    /// Bumps `counter`: every entry written under its old value is gone
    /// for good (unreachable; it expires with its TTL).
    async fn bump(&self, counter: String) -> Result<(), TierError> {
        let value: u64 = self.run(redis::cmd("INCR").arg(&counter)).await?;
        self.inner.generations.set(&counter, value);
        Ok(())
    }

    /// Purges `scope` on a cluster; returns how many entries were deleted
    /// (0 for a bucket or everything: those entries are made unreachable).
    pub(super) async fn remove_scope_on_cluster(
        &self,
        scope: &PurgeScope,
    ) -> Result<u64, TierError> {
        let prefix = &self.inner.prefix;
        match scope {
            PurgeScope::All => self.bump(slotted::all_generation(prefix)).await.map(|()| 0),
            PurgeScope::Bucket(bucket) => self
                .bump(slotted::bucket_generation(prefix, bucket))
                .await
                .map(|()| 0),
            PurgeScope::Object { bucket, key } => self.remove_object(bucket, key).await,
            PurgeScope::Entry(key) => self.remove_entry(key).await,
        }
    }

    /// Deletes every entry the object's index lists (one slot, one node).
    async fn remove_object(&self, bucket: &str, object: &str) -> Result<u64, TierError> {
        let index = slotted::object_index(&self.inner.prefix, bucket, object);
        let listed: Vec<String> = self
            .run(redis::cmd("ZRANGE").arg(&index).arg(0).arg(-1))
            .await?;
        if listed.is_empty() {
            return Ok(0);
        }
        // Only the members read: an entry added meanwhile stays listed.
        let mut pipe = redis::pipe();
        pipe.cmd("UNLINK")
            .arg(&listed)
            .cmd("ZREM")
            .arg(&index)
            .arg(&listed)
            .ignore();
        let (removed,): (u64,) = self.run_pipe(&pipe).await?;
        Ok(removed)
    }

    /// Deletes one entry under the current generations.
    async fn remove_entry(&self, key: &CacheKey) -> Result<u64, TierError> {
        let gens = self.generations(&key.bucket).await?;
        let entry = slotted::entry_key(&self.inner.prefix, key, gens);
        let index = slotted::object_index(&self.inner.prefix, &key.bucket, &key.object);
        let mut pipe = redis::pipe();
        pipe.cmd("UNLINK")
            .arg(&entry)
            .cmd("ZREM")
            .arg(&index)
            .arg(&entry)
            .ignore();
        let (removed,): (u64,) = self.run_pipe(&pipe).await?;
        Ok(removed)
    }
}
