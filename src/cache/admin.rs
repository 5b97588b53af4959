//! The cache's admin operations, purge and stats, as JSON documents.
//!
//! The admin API (`server/admin`) routes these paths here and renders the
//! answers:
//!
//! - `POST /admin/cache/purge`: everything, in every tier.
//! - `POST /admin/cache/purge/{bucket}`: one bucket.
//! - `POST /admin/cache/purge/{bucket}/{key…}`: one object (every version).
//! - `GET /admin/cache/stats`: every tier and bucket.
//! - `GET /admin/cache/stats/{bucket}`: one bucket.
//!
//! Buckets are named as configured; an unknown one is an `UnknownBucket`.
//! A purge reaches every tier; with Redis configured, the Redis tier
//! broadcasts it so other instances drop the entries from their memory tier
//! too.

use serde_json::{Map, Value, json};

use super::PurgeScope;
use super::stats::hit_rate;
use super::store::Store;
use crate::config::Config;
use crate::reload::Proxy;

/// The request names a bucket that is not configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no bucket with this name is configured")]
pub(crate) struct UnknownBucket;

/// What a purge request names: everything, a bucket, or one object of it.
pub(crate) fn purge_scope(
    proxy: &Proxy,
    bucket: Option<String>,
    key: Option<String>,
) -> Result<PurgeScope, UnknownBucket> {
    let Some(bucket) = bucket else {
        return Ok(PurgeScope::All);
    };
    known(&proxy.config(), &bucket)?;
    Ok(match key {
        None => PurgeScope::Bucket(bucket),
        Some(key) => PurgeScope::Object { bucket, key },
    })
}

/// Purges `scope` in every tier and broadcasts it; the answer's document.
pub(crate) async fn purge(proxy: &Proxy, scope: PurgeScope) -> Value {
    let store = proxy.shared().cache.store();
    let mut removed = Map::new();
    let mut failed = Map::new();
    let mut broadcast = None;
    if let Some(store) = store.as_deref() {
        for (tier, result) in store.purge(&scope).await {
            match result {
                Ok(count) => removed.insert(tier.as_str().into(), count.into()),
                Err(message) => failed.insert(tier.as_str().into(), message.into()),
            };
        }
        // Other instances sharing Redis drop it from their own tiers.
        broadcast = store.broadcast_purge(&scope).await;
    }
    tracing::info!(?scope, "cache purged");
    let mut body = json!({"status": "purged", "scope": scope_json(&scope), "removed": removed});
    match broadcast {
        Some(Ok(())) => body["broadcast"] = Value::Bool(true),
        Some(Err(message)) => {
            body["broadcast"] = Value::Bool(false);
            failed.insert("broadcast".into(), message.into());
        }
        None => {}
    }
    if !failed.is_empty() {
        body["failed"] = Value::Object(failed);
    }
    body
}

fn scope_json(scope: &PurgeScope) -> Value {
    match scope {
        PurgeScope::All => json!({"all": true}),
        PurgeScope::Bucket(bucket) => json!({"bucket": bucket}),
        PurgeScope::Object { bucket, key } => json!({"bucket": bucket, "key": key}),
        // Not requested through this API (forgets), but named exactly if it were.
        PurgeScope::Entry(entry) => json!({
            "bucket": &*entry.bucket,
            "key": entry.object,
            "backend": entry.backend.hex(),
            "version_id": entry.version_id,
        }),
    }
}

/// The statistics of every tier and bucket, or of one bucket.
pub(crate) fn stats(proxy: &Proxy, only: Option<&str>) -> Result<Value, UnknownBucket> {
    let config = proxy.config();
    if let Some(only) = only {
        known(&config, only)?;
    }
    let store = proxy.shared().cache.store();
    let Some(store) = store.as_deref() else {
        return Ok(json!({"enabled": false, "tiers": {}, "buckets": {}}));
    };
    let mut buckets = bucket_stats(store, &config, only);
    if let Some(only) = only {
        let mut bucket = buckets.remove(only).unwrap_or(Value::Null);
        bucket["name"] = Value::String(only.to_owned());
        return Ok(bucket);
    }
    Ok(json!({
        "enabled": config.cache.enabled,
        "tiers": tier_stats(store),
        "buckets": buckets,
    }))
}

fn known(config: &Config, bucket: &str) -> Result<(), UnknownBucket> {
    if config.buckets.iter().any(|b| b.name == bucket) {
        Ok(())
    } else {
        Err(UnknownBucket)
    }
}

/// Per-bucket counters and memory use, by configured name.
fn bucket_stats(store: &Store, config: &Config, only: Option<&str>) -> Map<String, Value> {
    let counters = store.all_bucket_counters();
    let mut buckets = Map::new();
    for bucket in &config.buckets {
        if only.is_some_and(|only| only != bucket.name) {
            continue;
        }
        let snapshot = counters
            .iter()
            .find(|(name, _)| **name == *bucket.name)
            .map(|(_, c)| c.snapshot())
            .unwrap_or_default();
        let (items, bytes) = store.memory_usage(&bucket.name);
        buckets.insert(
            bucket.name.clone(),
            json!({
                "enabled": config.cache.enabled && bucket.cache.enabled,
                "hits": snapshot.hits,
                "misses": snapshot.misses,
                "stale": snapshot.stale,
                "bypass": snapshot.bypass,
                "coalesced": snapshot.coalesced,
                "hit_rate": hit_rate(snapshot.hits, snapshot.misses),
                "memory": {"items": items, "bytes": bytes},
            }),
        );
    }
    buckets
}

/// Per-tier counters, by tier name.
fn tier_stats(store: &Store) -> Map<String, Value> {
    store
        .tier_stats()
        .into_iter()
        .map(|(kind, s)| {
            let stats = json!({
                "hits": s.hits,
                "misses": s.misses,
                "hit_rate": hit_rate(s.hits, s.misses),
                "evictions": s.evictions,
                "items": s.items,
                "bytes": s.bytes,
            });
            (kind.as_str().to_owned(), stats)
        })
        .collect()
}
