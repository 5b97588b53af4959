//! The Redis tier: entries shared by every proxy instance using one Redis.
//!
//! Values are [`codec`] entries (versioned, checksummed)
//! stored with `SET … PX <ttl>`, under keys described in `keys.rs`. Every
//! operation runs within the configured timeout; any Redis error or timeout
//! becomes a [`TierError`] (the caller counts it and treats it as a miss),
//! never a client error. The `bb8` pool is built without connecting, so the
//! proxy starts while Redis is down and recovers when it comes back
//! (connections that failed or timed out are discarded, not reused); while
//! connects fail, operations fail fast instead of each waiting for the
//! timeout (see `connection.rs`).
//! Purges walk the keyspace with `SCAN MATCH` (never `KEYS`) and `UNLINK`,
//! and are broadcast to the other instances (see [`PurgeSubscription`]).

mod connection;
mod keys;
mod pubsub;

pub use pubsub::PurgeSubscription;

use std::sync::Arc;
use std::time::Duration;

use bb8_redis::RedisConnectionManager;
use bb8_redis::bb8::{self, Pool};
use bytes::Bytes;
use redis::IntoConnectionInfo as _;
use tokio::sync::mpsc;

use self::connection::{Health, Manager};
use super::codec;
use super::tier::{CacheTier, LookupCounters, PurgeScope, TierError, TierFuture, TierStats};
use super::{CacheKey, CachedObject};
use crate::config::{CacheTierKind, RedisCacheConfig};

/// Keys asked for per `SCAN` round trip during purges.
const SCAN_COUNT: usize = 500;

/// The Redis cache tier; cheap to clone (shared state).
#[derive(Clone)]
pub struct RedisTier {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<Manager>,
    health: Arc<Health>,
    client: redis::Client,
    prefix: String,
    ttl: Duration,
    timeout: Duration,
    /// Identifies this instance's purge broadcasts.
    origin: String,
    lookups: LookupCounters,
}

impl std::fmt::Debug for RedisTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the URL or password.
        f.debug_struct("RedisTier")
            .field("key_prefix", &self.inner.prefix)
            .field("ttl", &self.inner.ttl)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisTier {
    /// Builds the tier without connecting (Redis may be down at startup).
    ///
    /// `config.password` applies when the URL has none; `config.db` applies
    /// when it is not 0 (otherwise the URL's database, default 0, is used).
    /// Must be called within a Tokio runtime (the pool spawns its reaper).
    pub fn new(config: &RedisCacheConfig) -> Result<Self, TierError> {
        let mut info = config
            .url
            .expose()
            .into_connection_info()
            .map_err(|_| TierError::Redis("invalid Redis URL".into()))?;
        let mut settings = info.redis_settings().clone();
        if let Some(password) = &config.password
            && settings.password().is_none()
        {
            settings = settings.set_password(password.expose());
        }
        if config.db != 0 {
            settings = settings.set_db(config.db);
        }
        info = info.set_redis_settings(settings);
        let client = redis::Client::open(info.clone())
            .map_err(|_| TierError::Redis("invalid Redis connection settings".into()))?;
        let health = Arc::new(Health::default());
        let manager = RedisConnectionManager::new(info)
            .map_err(|_| TierError::Redis("invalid Redis connection settings".into()))?;
        let manager = Manager::new(manager, health.clone());
        let pool = Pool::builder()
            .max_size(config.pool_size.max(1))
            .min_idle(None)
            .connection_timeout(config.timeout)
            .retry_connection(false)
            .test_on_check_out(false)
            .build_unchecked(manager);
        Ok(Self {
            inner: Arc::new(Inner {
                pool,
                health,
                client,
                prefix: config.key_prefix.clone(),
                ttl: config.ttl,
                timeout: config.timeout,
                origin: uuid::Uuid::new_v4().to_string(),
                lookups: LookupCounters::default(),
            }),
        })
    }

    /// The Redis key `key`'s entry is stored under.
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
            self.run::<i64>(cmd).await.map(drop)
        })
    }

    /// Starts a task delivering purges published by *other* instances to
    /// `tx`; it reconnects with backoff while Redis is away and stops when
    /// the returned guard is dropped or `tx`'s receiver is closed.
    pub fn subscribe_purges(&self, tx: mpsc::Sender<PurgeScope>) -> PurgeSubscription {
        pubsub::spawn_subscriber(
            self.inner.client.clone(),
            self.purge_channel(),
            self.inner.origin.clone(),
            self.inner.timeout,
            tx,
        )
    }

    /// Runs one Redis command on a pooled connection within the timeout.
    async fn run<T: redis::FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, TierError> {
        let health = &self.inner.health;
        if health.is_down() {
            return Err(TierError::Redis(
                "unavailable (a connect failed moments ago)".into(),
            ));
        }
        let attempt = async {
            let connect_failure = health.connect_failure();
            let mut conn = tokio::select! {
                biased;
                got = self.inner.pool.get() => got.map_err(|e| match e {
                    bb8::RunError::User(e) => TierError::Redis(e.to_string()),
                    bb8::RunError::TimedOut => TierError::Timeout,
                })?,
                () = connect_failure => {
                    return Err(TierError::Redis("cannot connect".into()));
                }
            };
            conn.query::<T>(&cmd)
                .await
                .map_err(|e| TierError::Redis(e.to_string()))
        };
        tokio::time::timeout(self.inner.timeout, attempt)
            .await
            .map_err(|_| TierError::Timeout)?
    }

    async fn lookup(&self, key: &CacheKey) -> Result<Option<CachedObject>, TierError> {
        let redis_key = self.redis_key(key);
        let value: Option<Vec<u8>> = self.run(redis::cmd("GET").arg(&redis_key).clone()).await?;
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
        let redis_key = self.redis_key(key);
        let ttl_ms = u64::try_from(self.inner.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(redis_key).arg(value).arg("PX").arg(ttl_ms);
        self.run(cmd).await
    }

    async fn remove_scope(&self, scope: &PurgeScope) -> Result<u64, TierError> {
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
                let (next, found): (u64, Vec<Vec<u8>>) = self.run(cmd).await?;
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
        self.run(cmd).await
    }
}

impl CacheTier for RedisTier {
    fn kind(&self) -> CacheTierKind {
        CacheTierKind::Redis
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

    /// Hits and misses of this instance; Redis manages its own memory, so
    /// evictions, items and bytes are not tracked (zero).
    fn stats(&self) -> TierStats {
        self.inner.lookups.stats()
    }
}
