//! Validation of `cache:` and `buckets[i].cache:`.

use std::collections::HashSet;
use std::path::PathBuf;

use super::model::{
    BucketCacheConfig, CacheConfig, CacheTierKind, DiskCacheConfig, MemoryCacheConfig,
};
use super::raw::{RawBucketCache, RawCache, RawDisk, RawMemory};
use super::redis::redis;
use super::size::{MIB, Size, size};
use crate::config::ranges::{MAX_DISK_BYTES, MAX_MEMORY_BYTES};
use crate::config::{Bool, Errors, Str, seconds};

/// Validates the top-level `cache:` section.
pub(crate) fn cache(raw: Option<RawCache>, errs: &mut Errors) -> Option<CacheConfig> {
    let Some(raw) = raw else {
        return Some(CacheConfig::default());
    };
    let before = errs.count();
    let defaults = CacheConfig::default();
    let enabled = raw.enabled.is_some_and(|Bool(b)| b);
    let memory = memory(raw.memory.unwrap_or_default(), errs);
    let layers = layers(raw.cache_layers, errs);
    let disk_listed = layers.contains(&CacheTierKind::Disk);
    let redis_listed = layers.contains(&CacheTierKind::Redis);
    let disk = match raw.disk {
        Some(d) if d.enabled.is_none_or(|Bool(b)| b) => disk(d, &memory, errs),
        _ => None,
    };
    let redis = match raw.redis {
        Some(r) if r.enabled.is_none_or(|Bool(b)| b) => redis(r, errs),
        _ => None,
    };
    for (kind, listed, present) in [
        (CacheTierKind::Disk, disk_listed, disk.is_some()),
        (CacheTierKind::Redis, redis_listed, redis.is_some()),
    ] {
        if listed && !present && errs.count() == before {
            errs.push(
                "cache.cache_layers",
                format!(
                    "lists \"{0}\" but cache.{0} is missing or not enabled",
                    kind.as_str()
                ),
            );
        }
    }
    let stale_if_error = seconds(
        raw.stale_if_error_seconds,
        defaults.stale_if_error.as_secs(),
        false,
        "cache.stale_if_error_seconds",
        errs,
    );
    let slice_size = slice_size(raw.slice_size_mb, &memory, errs);
    (errs.count() == before).then(|| CacheConfig {
        enabled,
        slice_size,
        layers,
        memory,
        // A tier configured but not listed is not used.
        disk: disk.filter(|_| disk_listed),
        redis: redis.filter(|_| redis_listed),
        stale_if_error,
    })
}

/// The smallest slice: smaller ones would turn a large object into
/// countless upstream requests.
const MIN_SLICE: u64 = 64 * 1024;

/// `cache.slice_size_mb`: 0 or absent is off; else at least [`MIN_SLICE`]
/// and at most the item limit (a slice is stored like an object).
fn slice_size(raw: Option<Size>, memory: &MemoryCacheConfig, errs: &mut Errors) -> u64 {
    const PATH: &str = "cache.slice_size_mb";
    let bytes = match raw {
        None => return 0,
        Some(size) if size.bytes() == 0 => return 0,
        Some(size) => size.bytes(),
    };
    if bytes < MIN_SLICE {
        errs.push(PATH, "must be 0 (off) or at least 64KB");
    } else if bytes > memory.max_item_size {
        errs.push(PATH, "must not exceed cache.memory.max_item_size_mb");
    }
    bytes
}

fn layers(raw: Option<Vec<Str>>, errs: &mut Errors) -> Vec<CacheTierKind> {
    let Some(raw) = raw else {
        return vec![CacheTierKind::Memory];
    };
    if raw.is_empty() {
        errs.push("cache.cache_layers", "must list at least one layer");
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (i, Str(name)) in raw.into_iter().enumerate() {
        let at = format!("cache.cache_layers[{i}]");
        let kind = match name.trim() {
            "memory" => CacheTierKind::Memory,
            "disk" => CacheTierKind::Disk,
            "redis" => CacheTierKind::Redis,
            _ => {
                errs.push(at, "unknown cache layer (expected memory, disk or redis)");
                continue;
            }
        };
        if !seen.insert(kind) {
            errs.push(at, "duplicate cache layer");
            continue;
        }
        out.push(kind);
    }
    out
}

fn memory(raw: RawMemory, errs: &mut Errors) -> MemoryCacheConfig {
    let defaults = MemoryCacheConfig::default();
    let max_item_size = size(
        raw.max_item_size_mb,
        defaults.max_item_size,
        MAX_MEMORY_BYTES,
        "cache.memory.max_item_size_mb",
        errs,
    );
    let max_cache_size = size(
        raw.max_cache_size_mb,
        defaults.max_cache_size,
        MAX_MEMORY_BYTES,
        "cache.memory.max_cache_size_mb",
        errs,
    );
    if max_item_size > max_cache_size {
        errs.push(
            "cache.memory.max_item_size_mb",
            "must not exceed cache.memory.max_cache_size_mb",
        );
    }
    let default_ttl = seconds(
        raw.default_ttl_seconds,
        defaults.default_ttl.as_secs(),
        true,
        "cache.memory.default_ttl_seconds",
        errs,
    );
    MemoryCacheConfig {
        max_item_size,
        max_cache_size,
        default_ttl,
    }
}

fn disk(raw: RawDisk, memory: &MemoryCacheConfig, errs: &mut Errors) -> Option<DiskCacheConfig> {
    let before = errs.count();
    let cache_dir = match raw.cache_dir {
        Some(Str(dir)) if !dir.trim().is_empty() => Some(PathBuf::from(dir)),
        Some(_) => {
            errs.push("cache.disk.cache_dir", "must not be empty");
            None
        }
        None => {
            errs.push("cache.disk.cache_dir", "missing");
            None
        }
    };
    let max_size = size(
        raw.max_disk_cache_size_mb,
        10 * 1024 * MIB,
        MAX_DISK_BYTES,
        "cache.disk.max_disk_cache_size_mb",
        errs,
    );
    if max_size < memory.max_item_size {
        errs.push(
            "cache.disk.max_disk_cache_size_mb",
            "must be at least cache.memory.max_item_size_mb",
        );
    }
    let cache_dir = cache_dir?;
    (errs.count() == before).then_some(DiskCacheConfig {
        cache_dir,
        max_size,
    })
}

/// Validates `buckets[i].cache` against the global section.
pub(crate) fn bucket_cache(
    raw: Option<RawBucketCache>,
    global: &CacheConfig,
    at: &str,
    errs: &mut Errors,
) -> Option<BucketCacheConfig> {
    let Some(raw) = raw else {
        return Some(BucketCacheConfig::default());
    };
    let before = errs.count();
    let ttl = raw
        .ttl_seconds
        .map(|t| seconds(Some(t), 0, true, &format!("{at}.cache.ttl_seconds"), errs));
    let max_item_size = raw.max_item_size_mb.map(|bytes| {
        let path = format!("{at}.cache.max_item_size_mb");
        let bytes = size(Some(bytes), 0, MAX_MEMORY_BYTES, &path, errs);
        if bytes > global.memory.max_item_size {
            errs.push(path, "must not exceed cache.memory.max_item_size_mb");
        }
        bytes
    });
    (errs.count() == before).then_some(BucketCacheConfig {
        enabled: raw.enabled.is_none_or(|Bool(b)| b),
        ttl,
        max_item_size,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::size::parse_size;
    use super::*;
    use crate::config::Config;

    fn parse(cache: &str, bucket_cache: &str) -> Result<Config, Vec<(String, String)>> {
        let yaml = format!(
            "buckets:\n  - name: products\n    path_prefix: /p\n    s3: {{bucket: products-bkt, region: us-east-1, endpoint: 'http://127.0.0.1:9', access_key: A, secret_key: S}}\n{bucket_cache}{cache}"
        );
        Config::from_yaml_str_with_env(&yaml, &|_| None)
            .map_err(|e| e.0.into_iter().map(|e| (e.path, e.message)).collect())
    }

    fn errors(cache: &str) -> Vec<(String, String)> {
        parse(cache, "").expect_err("should be invalid")
    }

    #[test]
    fn the_issue_example_validates() {
        let config = parse(
            "cache:
  enabled: true
  cache_layers: [\"memory\", \"disk\", \"redis\"]
  memory:
    max_item_size_mb: 10
    max_cache_size_mb: 1024
    default_ttl_seconds: 3600
  disk:
    enabled: true
    cache_dir: /var/cache/yatagarasu
    max_disk_cache_size_mb: 10240
  redis:
    enabled: true
    redis_url: \"redis://127.0.0.1:6379\"
    redis_password: \"\"
    redis_db: 0
    key_prefix: \"yatagarasu:\"
    ttl_seconds: 3600
    pool_size: 16
    timeout_ms: 200
  stale_if_error_seconds: 300
",
            "    cache:\n      ttl_seconds: 7200\n      max_item_size_mb: 5\n",
        )
        .unwrap();
        let cache = &config.cache;
        assert!(cache.enabled);
        assert_eq!(
            cache.layers,
            [
                CacheTierKind::Memory,
                CacheTierKind::Disk,
                CacheTierKind::Redis
            ]
        );
        assert_eq!(cache.memory.max_item_size, 10 * MIB);
        assert_eq!(cache.memory.max_cache_size, 1024 * MIB);
        let disk = cache.disk.as_ref().unwrap();
        assert_eq!(disk.cache_dir, PathBuf::from("/var/cache/yatagarasu"));
        assert_eq!(disk.max_size, 10240 * MIB);
        let redis = cache.redis.as_ref().unwrap();
        assert_eq!(redis.password, None);
        assert_eq!(redis.pool_size, 16);
        assert_eq!(redis.timeout, Duration::from_millis(200));
        assert_eq!(cache.stale_if_error, Duration::from_secs(300));
        let bucket = &config.buckets[0].cache;
        assert!(bucket.enabled);
        assert_eq!(bucket.ttl, Some(Duration::from_secs(7200)));
        assert_eq!(bucket.max_item_size, Some(5 * MIB));
    }

    #[test]
    fn defaults_without_a_section() {
        let config = parse("", "").unwrap();
        assert_eq!(config.cache, CacheConfig::default());
        assert!(!config.cache.enabled);
        assert_eq!(config.buckets[0].cache, BucketCacheConfig::default());
        let config = parse("cache: {enabled: true}\n", "").unwrap();
        assert_eq!(config.cache.layers, [CacheTierKind::Memory]);
        assert_eq!(config.cache.memory, MemoryCacheConfig::default());
    }

    #[test]
    fn slice_size_is_off_by_default_and_bounded() {
        assert_eq!(
            parse("cache: {enabled: true}\n", "")
                .unwrap()
                .cache
                .slice_size,
            0
        );
        let size = |value: &str| {
            parse(
                &format!("cache: {{enabled: true, slice_size_mb: {value}}}\n"),
                "",
            )
            .map(|c| c.cache.slice_size)
        };
        assert_eq!(size("0"), Ok(0));
        assert_eq!(size("4"), Ok(4 * MIB));
        assert_eq!(size("'64KB'"), Ok(64 * 1024));
        for (value, message) in [
            ("'63KB'", "must be 0 (off) or at least 64KB"),
            ("11", "must not exceed cache.memory.max_item_size_mb"),
        ] {
            let errors = size(value).expect_err(value);
            assert_eq!(
                errors,
                [("cache.slice_size_mb".to_owned(), message.to_owned())],
                "{value}"
            );
        }
    }

    #[test]
    fn sizes_accept_units_everywhere() {
        let config = parse(
            "cache:\n  enabled: true\n  memory: {max_item_size_mb: '512KB', max_cache_size_mb: '1GB'}\n",
            "    cache: {max_item_size_mb: '4096 B'}\n",
        )
        .unwrap();
        assert_eq!(config.cache.memory.max_item_size, 512 * 1024);
        assert_eq!(config.cache.memory.max_cache_size, 1024 * MIB);
        assert_eq!(config.buckets[0].cache.max_item_size, Some(4096));
        assert_eq!(parse_size("7"), Some(7 * MIB));
        assert_eq!(parse_size("2GiB"), Some(2048 * MIB));
        assert_eq!(parse_size("1.5GB"), None);
        assert_eq!(parse_size("lots"), None);
        let e = errors("cache:\n  memory: {max_cache_size_mb: 'huge'}\n");
        assert_eq!(e[0].0, "cache.memory.max_cache_size_mb");
    }

    #[test]
    fn item_larger_than_cache_is_refused() {
        let e = errors("cache:\n  memory: {max_item_size_mb: 20, max_cache_size_mb: 10}\n");
        assert_eq!(e[0].0, "cache.memory.max_item_size_mb");
        assert!(
            parse(
                "cache:\n  memory: {max_item_size_mb: 10, max_cache_size_mb: 10}\n",
                ""
            )
            .is_ok()
        );
        let e = errors("cache:\n  memory: {max_item_size_mb: 0, default_ttl_seconds: 0}\n");
        let paths: Vec<_> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert!(paths.contains(&"cache.memory.max_item_size_mb"), "{e:?}");
        assert!(paths.contains(&"cache.memory.default_ttl_seconds"), "{e:?}");
    }

    #[test]
    fn layer_list_problems() {
        let e = errors("cache:\n  cache_layers: []\n");
        assert_eq!(
            e[0],
            (
                "cache.cache_layers".into(),
                "must list at least one layer".into()
            )
        );
        let e = errors("cache:\n  cache_layers: [memory, ssd]\n");
        assert_eq!(e[0].0, "cache.cache_layers[1]");
        assert!(e[0].1.contains("unknown"), "{e:?}");
        let e = errors("cache:\n  cache_layers: [memory, memory]\n");
        assert_eq!(
            e[0],
            (
                "cache.cache_layers[1]".into(),
                "duplicate cache layer".into()
            )
        );
        let e = errors("cache:\n  cache_layers: [memory, disk]\n");
        assert_eq!(e[0].0, "cache.cache_layers");
        assert!(
            e[0].1.contains("cache.disk is missing or not enabled"),
            "{e:?}"
        );
        let e = errors(
            "cache:\n  cache_layers: [redis]\n  redis: {enabled: false, redis_url: 'redis://h'}\n",
        );
        assert!(e[0].1.contains("cache.redis"), "{e:?}");
    }

    #[test]
    fn disk_and_redis_problems_do_not_echo_values() {
        let e = errors("cache:\n  cache_layers: [disk]\n  disk: {cache_dir: ' '}\n");
        assert_eq!(
            e[0],
            ("cache.disk.cache_dir".into(), "must not be empty".into())
        );
        let e = errors(
            "cache:\n  cache_layers: [redis]\n  redis: {redis_url: 'http://user:hunter2@h'}\n",
        );
        assert_eq!(e[0].0, "cache.redis.redis_url");
        assert!(!e[0].1.contains("hunter2"), "{e:?}");
        let e = errors(
            "cache:\n  cache_layers: [redis]\n  redis: {redis_url: 'redis://:hunter2@[::1'}\n",
        );
        assert_eq!(e[0].0, "cache.redis.redis_url");
        assert!(!e[0].1.contains("hunter2"), "{e:?}");
        let config = parse(
            "cache:\n  cache_layers: [redis]\n  redis: {redis_url: 'rediss://h:6380/2', redis_password: pw}\n",
            "",
        )
        .unwrap();
        let redis = config.cache.redis.unwrap();
        assert_eq!(redis.password.unwrap().expose(), "pw");
        assert!(!format!("{:?}", redis.url).contains("rediss"));
    }

    #[test]
    fn a_tier_configured_but_not_listed_is_unused() {
        let config = parse("cache:\n  disk: {cache_dir: /tmp/x}\n", "").unwrap();
        assert!(config.cache.disk.is_none());
    }

    #[test]
    fn bucket_overrides() {
        let config = parse("cache: {enabled: true}\n", "    cache: {enabled: false}\n").unwrap();
        assert!(!config.buckets[0].cache.enabled);
        let e = parse(
            "cache:\n  memory: {max_item_size_mb: 1}\n",
            "    cache: {max_item_size_mb: 2, ttl_seconds: 0}\n",
        )
        .unwrap_err();
        let paths: Vec<_> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "buckets[0].cache.ttl_seconds",
                "buckets[0].cache.max_item_size_mb"
            ]
        );
    }
}
