//! The Redis tier: entries shared by every proxy instance using one Redis
//! server or one Redis Cluster.
//!
//! Values are [`codec`] entries (versioned, checksummed)
//! stored with `SET … PX <ttl>`, under keys described in `keys.rs`. Every
//! operation runs within the configured timeout; any Redis error or timeout
//! becomes a [`TierError`] (the caller counts it and treats it as a miss),
//! never a client error. Nothing connects at construction, so the proxy
//! starts while Redis is down and recovers when it comes back; while
//! connects fail, operations fail fast instead of each waiting for the
//! timeout (see `connection.rs`, `cluster.rs`).
//!
//! One server: purges walk the keyspace with `SCAN MATCH` (never `KEYS`)
//! and `UNLINK`. A cluster (`cache.redis.cluster_nodes`): keys carry hash
//! tags so one object's keys share a slot; a bucket or whole-cache purge
//! bumps a generation number that is part of every key (see
//! `generation.rs`), and an object purge removes the keys listed in the
//! object's index (a sorted set scored by expiry, pruned as entries are
//! written); no purge scans a node. Either way purges are
//! broadcast to the other instances (see [`PurgeSubscription`]); `PUBLISH`
//! on a cluster reaches the subscribers of every node.

mod cluster;
mod connection;
mod generation;
mod keys;
mod link;
mod pubsub;
mod slots;

pub use pubsub::PurgeSubscription;

use std::sync::Arc;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use bb8_redis::bb8::Pool;
use bytes::Bytes;
use redis::IntoConnectionInfo as _;
use tokio::sync::mpsc;

use self::cluster::ClusterLink;
use self::connection::{Health, Manager};
use self::generation::Generations;
use self::keys::slotted;
use self::link::{Link, Request};
use super::codec;
use super::tier::{CacheTier, LookupCounters, PurgeScope, TierError, TierFuture, TierStats};
use super::{CacheKey, CachedObject};
use crate::config::{CacheTierKind, RedisCacheConfig, Secret};

/// Keys asked for per `SCAN` round trip during purges.
const SCAN_COUNT: usize = 500;

/// The Redis cache tier; cheap to clone (shared state).
#[derive(Clone)]
pub struct RedisTier {
    inner: Arc<Inner>,
}

struct Inner {
    link: Link,
    /// One per node a purge subscriber may listen on (one for one server).
    subscribe_to: Vec<redis::Client>,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    /// Identifies this instance's purge broadcasts.
    origin: String,
    lookups: LookupCounters,
    /// Generation numbers (cluster only).
    generations: Generations,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL or password.
        f.debug_struct("RedisTier")
            .field("cluster", &self.inner.link.is_cluster())
            .field("key_prefix", &self.inner.prefix)
            .field("ttl", &self.inner.ttl)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// The connection settings of `url`, with `password` when the URL has none
/// and `db` when it is not 0 (otherwise the URL's database, default 0).
fn connection_info(
    url: &Secret,
    password: Option<&Secret>,
    db: i64,
) -> Result<redis::ConnectionInfo, TierError> {
    let info = url
        .expose()
        .trim()
        .into_connection_info()
        .map_err(|_| TierError::Redis("invalid Redis URL".into()))?;
    let mut settings = info.redis_settings().clone();
    if let Some(password) = password
        && settings.password().is_none()
    {
        settings = settings.set_password(password.expose());
    }
    if db != 0 {
        settings = settings.set_db(db);
    }
    Ok(info.set_redis_settings(settings))
}

impl RedisTier {
    /// Builds the tier without connecting (Redis may be down at startup):
    /// a cluster link when `config.cluster_nodes` is set, else a pool.
    /// Must be called within a Tokio runtime (the pool spawns its reaper).
    pub fn new(config: &RedisCacheConfig) -> Result<Self, TierError> {
        let invalid = |_| TierError::Redis("invalid Redis connection settings".into());
        let password = config.password.as_ref();
        let (link, subscribe_to) = if config.cluster_nodes.is_empty() {
            let info = connection_info(&config.url, password, config.db)?;
            let client = redis::Client::open(info.clone()).map_err(invalid)?;
            let health = Arc::new(Health::default());
            let manager = RedisConnectionManager::new(info).map_err(invalid)?;
            let pool = Pool::builder()
                .max_size(config.pool_size.max(1))
                .min_idle(None)
                .connection_timeout(config.timeout)
                .retry_connection(false)
                .test_on_check_out(false)
                .build_unchecked(Manager::new(manager, health.clone()));
            (Link::Single { pool, health }, vec![client])
        } else {
            let nodes = config
                .cluster_nodes
                .iter()
                .map(|url| connection_info(url, password, 0))
                .collect::<Result<Vec<_>, _>>()?;
            let clients = nodes
                .iter()
                .map(|info| redis::Client::open(info.clone()).map_err(invalid))
                .collect::<Result<Vec<_>, _>>()?;
            let link = ClusterLink::new(nodes, config.timeout)?;
            (Link::Cluster(Box::new(link)), clients)
        };
        Ok(Self {
            inner: Arc::new(Inner {
                link,
                subscribe_to,
                prefix: config.key_prefix.clone(),
                ttl: config.ttl,
                timeout: config.timeout,
                origin: uuid::Uuid::new_v4().to_string(),
                lookups: LookupCounters::default(),
                generations: Generations::default(),
            }),
        })
    }

    /// The Redis key `key`'s entry is stored under on one server (a
    /// cluster's keys also carry generation numbers; see `keys.rs`).
    pub fn redis_key(&self, key: &CacheKey) -> String {
        keys::entry_key(&self.inner.prefix, key)
    }

    /// The pub/sub channel purges are broadcast on.
    pub fn purge_channel(&self) -> String {
        keys::purge_channel(&self.inner.prefix)
    }

    /// Tells the other instances sharing this Redis to purge `scope`.
    pub fn publish_purge<'a>(&'a self, scope: &'a PurgeScope) -> TierFuture<'a, ()> {
        Box::pin(async move {
            let message = pubsub::PurgeMessage::new(&self.inner.origin, scope);
            let payload = serde_json::to_vec(&message)
                .map_err(|e| TierError::Redis(format!("encoding a purge message: {e}")))?;
            let channel = self.purge_channel();
            let mut cmd = redis::cmd("PUBLISH");
            cmd.arg(channel).arg(payload);
            self.run::<i64>(&cmd).await.map(drop)
        })
    }

    /// Starts a task delivering purges published by *other* instances to
    /// `tx`; it reconnects with backoff while Redis is away (on a cluster,
    /// to the next of the configured nodes) and stops when the returned
    /// guard is dropped or `tx`'s receiver is closed.
    pub fn subscribe_purges(&self, tx: mpsc::Sender<PurgeScope>) -> PurgeSubscription {
        pubsub::spawn_subscriber(
            self.inner.subscribe_to.clone(),
            self.purge_channel(),
            self.inner.origin.clone(),
            self.inner.timeout,
            tx,
        )
    }

    /// Runs one Redis command within the timeout.
    async fn run<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, TierError> {
        self.inner
            .link
            .run(Request::Cmd(cmd), self.inner.timeout)
            .await
    }

    /// Runs a pipeline within the timeout.
    async fn run_pipe<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> Result<T, TierError> {
        self.inner
            .link
            .run(Request::Pipe(pipe), self.inner.timeout)
            .await
    }

    /// The key of `key`'s entry now (on a cluster, under the current generations).
    async fn entry_key(&self, key: &CacheKey) -> Result<String, TierError> {
        if !self.inner.link.is_cluster() {
            return Ok(self.redis_key(key));
        }
        let gens = self.generations(&key.bucket).await?;
        Ok(slotted::entry_key(&self.inner.prefix, key, gens))
    }

    async fn lookup(&self, key: &CacheKey) -> Result<Option<CachedObject>, TierError> {
        let redis_key = self.entry_key(key).await?;
        let value: Option<Vec<u8>> = self.run(redis::cmd("GET").arg(&redis_key)).await?;
        let Some(value) = value else {
            return Ok(None);
        };
        let decoded = codec::decode(Bytes::from(value)).and_then(|d| {
            if d.key == *key {
                Ok(d)
            } else {
                Err(TierError::Corrupt("entry belongs to another key".into()))
            }
        });
        match decoded {
            Ok(entry) => Ok(Some(entry.object)),
            Err(e) => {
                // Best effort: a corrupt value is never served again.
                let _ = self.unlink(vec![redis_key]).await;
                Err(e)
            }
        }
    }

    async fn store(&self, key: &CacheKey, object: CachedObject) -> Result<(), TierError> {
        let value = codec::encode(key, &object);
        let redis_key = self.entry_key(key).await?;
        let ttl_ms = u64::try_from(self.inner.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut set = redis::cmd("SET");
        set.arg(&redis_key).arg(value).arg("PX").arg(ttl_ms);
        if !self.inner.link.is_cluster() {
            return self.run(&set).await;
        }
        // The object's index lists the entry for object purges, scored by
        // when it expires, and drops the expired ones as it goes (it stays
        // as small as the entries alive); same slot, so one round trip to
        // one node.
        let index = slotted::object_index(&self.inner.prefix, &key.bucket, &key.object);
        let now_ms = unix_millis();
        let mut pipe = redis::pipe();
        pipe.add_command(set)
            .ignore()
            .cmd("ZADD")
            .arg(&index)
            .arg(now_ms.saturating_add(ttl_ms))
            .arg(&redis_key)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&index)
            .arg("-inf")
            .arg(now_ms)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&index)
            .arg(ttl_ms)
            .ignore();
        self.run_pipe(&pipe).await
    }

    async fn remove_scope(&self, scope: &PurgeScope) -> Result<u64, TierError> {
        if self.inner.link.is_cluster() {
            return self.remove_scope_on_cluster(scope).await;
        }
        let (exact, patterns) = keys::purge_targets(&self.inner.prefix, scope);
        let mut removed = 0;
        if !exact.is_empty() {
            removed += self.unlink(exact).await?;
        }
        for pattern in patterns {
            let mut cursor: u64 = 0;
            loop {
                let mut cmd = redis::cmd("SCAN");
                cmd.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(SCAN_COUNT);
                let (next, found): (u64, Vec<Vec<u8>>) = self.run(&cmd).await?;
                if !found.is_empty() {
                    removed += self.unlink(found).await?;
                }
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(removed)
    }

    async fn unlink<K: redis::ToRedisArgs>(&self, keys: Vec<K>) -> Result<u64, TierError> {
        let mut cmd = redis::cmd("UNLINK");
        cmd.arg(keys);
        self.run(&cmd).await
    }
}

impl CacheTier for RedisTier {
    fn kind(&self) -> CacheTierKind {
        CacheTierKind::Redis
    }

    fn get<'a>(&'a self, key: &'a CacheKey) -> TierFuture<'a, Option<CachedObject>> {
        Box::pin(async move {
            // One bound for the whole lookup (a cluster may first read generations).
            let found = tokio::time::timeout(self.inner.timeout, self.lookup(key))
                .await
                .unwrap_or(Err(TierError::Timeout));
            self.inner.lookups.record(&found);
            found
        })
    }

    fn put<'a>(&'a self, key: &'a CacheKey, object: CachedObject) -> TierFuture<'a, ()> {
        Box::pin(async move {
            tokio::time::timeout(self.inner.timeout, self.store(key, object))
                .await
                .unwrap_or(Err(TierError::Timeout))
        })
    }

    fn purge<'a>(&'a self, scope: &'a PurgeScope) -> TierFuture<'a, u64> {
        Box::pin(self.remove_scope(scope))
    }

    /// Hits and misses of this instance; Redis manages its own memory, so
    /// evictions, items and bytes are not tracked (zero).
    fn stats(&self) -> TierStats {
        self.inner.lookups.stats()
    }
}

/// Milliseconds since the Unix epoch (0 before it): the scores of an
/// object's index on a cluster.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
