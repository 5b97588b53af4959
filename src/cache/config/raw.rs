//! `cache:` and `buckets[i].cache:` as written.

use serde::Deserialize;

use super::size::Size;
use crate::config::{Bool, Str, U64};

/// `cache:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the cache section (a mapping)"
)]
pub(crate) struct RawCache {
    pub(super) enabled: Option<Bool>,
    pub(super) cache_layers: Option<Vec<Str>>,
    pub(super) memory: Option<RawMemory>,
    pub(super) disk: Option<RawDisk>,
    pub(super) redis: Option<RawRedis>,
    pub(super) stale_if_error_seconds: Option<U64>,
    pub(super) slice_size_mb: Option<Size>,
}

/// `cache.memory:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the memory cache section (a mapping)"
)]
pub(super) struct RawMemory {
    pub(super) max_item_size_mb: Option<Size>,
    pub(super) max_cache_size_mb: Option<Size>,
    pub(super) default_ttl_seconds: Option<U64>,
}

/// `cache.disk:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the disk cache section (a mapping)"
)]
pub(super) struct RawDisk {
    pub(super) enabled: Option<Bool>,
    pub(super) cache_dir: Option<Str>,
    pub(super) max_disk_cache_size_mb: Option<Size>,
}

/// `cache.redis:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the redis cache section (a mapping)"
)]
pub(super) struct RawRedis {
    pub(super) enabled: Option<Bool>,
    pub(super) redis_url: Option<Str>,
    pub(super) cluster_nodes: Option<Vec<Str>>,
    pub(super) redis_password: Option<Str>,
    pub(super) redis_db: Option<U64>,
    pub(super) key_prefix: Option<Str>,
    pub(super) ttl_seconds: Option<U64>,
    pub(super) pool_size: Option<U64>,
    pub(super) timeout_ms: Option<U64>,
}

/// `buckets[i].cache:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the bucket's cache section (a mapping)"
)]
pub(crate) struct RawBucketCache {
    pub(super) enabled: Option<Bool>,
    pub(super) ttl_seconds: Option<U64>,
    pub(super) max_item_size_mb: Option<Size>,
}
