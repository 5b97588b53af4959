//! `cache:` and `buckets[i].cache:`: as written, validated, and the validated
//! types the cache is built from.
//!
//! Byte sizes are written in MiB (`max_item_size_mb: 10`); every size option
//! also accepts a whole number with a unit (`"512KB"`, `"1GB"`): `B`,
//! `KB`/`KiB`, `MB`/`MiB`, `GB`/`GiB`, all powers of 1024. A string of bare
//! digits (as `${VAR}` gives) means MiB, like a number.

mod model;
mod raw;
mod redis;
mod size;
mod validate;

pub use model::{
    BucketCacheConfig, CacheConfig, CacheTierKind, DiskCacheConfig, MemoryCacheConfig,
    RedisCacheConfig,
};
pub(crate) use raw::{RawBucketCache, RawCache};
pub(crate) use validate::{bucket_cache, cache};
