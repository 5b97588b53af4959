//! The disk and Redis tiers through the real binary: a disk cache that
//! survives a restart and refuses a corrupted file, a Redis that is down and
//! comes back, purges shared by two instances on one Redis, an object S3
//! lost that no tier serves again, a bucket repointed across a restart, and
//! a purge that wins over the writes of the fill just before it.

mod common;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use common::redis::RedisServer;
use common::*;

const BKT: &str = "tiers-bkt";

fn proxy_config(s3: &S3Server, cache: String) -> Config {
    let mut cfg = Config::new(vec![BucketCfg::new("products", s3, BKT)]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = cache;
    cfg
}

fn disk_cache(dir: &Path) -> String {
    format!(
        "cache:\n  enabled: true\n  cache_layers: [memory, disk]\n  disk:\n    cache_dir: {}\n    max_disk_cache_size_mb: 64\n",
        q(dir.to_str().unwrap())
    )
}

fn redis_cache(redis: &RedisServer, prefix: &str) -> String {
    format!(
        "cache:\n  enabled: true\n  cache_layers: [memory, redis]\n  redis:\n    redis_url: {}\n    key_prefix: {}\n    timeout_ms: 500\n",
        q(&redis.url()),
        q(prefix)
    )
}

/// The entry files under a disk cache directory (not the temp directory).
fn entry_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(fans) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    fans.flatten()
        .filter(|fan| fan.file_name().len() == 2)
        .filter_map(|fan| std::fs::read_dir(fan.path()).ok())
        .flat_map(|files| files.flatten().map(|f| f.path()))
        .collect()
}

/// The single entry file of a directory holding one entry, once written.
async fn the_entry_file(dir: &Path) -> PathBuf {
    eventually("the entry file", DEADLINE, || async {
        match entry_files(dir).as_slice() {
            [one] => Ok(one.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

fn s3_gets(s3: &S3Server, needle: &str) -> usize {
    s3.requests_for(needle)
        .iter()
        .filter(|r| r.method == "GET")
        .count()
}

/// The answer to a `KEYS` query.
type KeysFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<String>, String>> + Send>>;

/// `KEYS pattern` on a clone of `conn`.
fn redis_keys(conn: &::redis::aio::MultiplexedConnection) -> impl Fn(&'static str) -> KeysFuture {
    let conn = conn.clone();
    move |pattern| {
        let mut conn = conn.clone();
        Box::pin(async move {
            ::redis::cmd("KEYS")
                .arg(pattern)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

async fn start(cfg: &Config) -> Proxy {
    let proxy = Proxy::start(cfg).await;
    proxy.wait_ready().await;
    proxy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_disk_tier_survives_a_restart_and_never_serves_a_corrupted_file() {
    let s3 = S3Server::start(&[BKT]).await;
    let body = pattern_bytes(100_000);
    s3.put_object(BKT, "d.bin", &body, Some("application/octet-stream"), &[])
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = proxy_config(&s3, disk_cache(dir.path()));

    let first = start(&cfg).await;
    let r = get(first.main, "/products/d.bin").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let original_type = r.header("content-type").map(str::to_owned);
    let file = the_entry_file(dir.path()).await;
    drop(first);

    // A new process over the same directory answers from disk.
    let second = start(&cfg).await;
    let r = get(second.main, "/products/d.bin").await;
    assert_eq!(r.header("x-cache"), Some("HIT disk"), "{}", r.describe());
    assert!(r.body.as_ref() == body.as_slice(), "byte-exact from disk");
    assert_eq!(r.header("content-type").map(str::to_owned), original_type);
    let r = get(second.main, "/products/d.bin").await;
    assert_eq!(
        r.header("x-cache"),
        Some("HIT memory"),
        "promoted to memory"
    );
    assert_eq!(s3_gets(&s3, "d.bin"), 1);
    drop(second);

    // Flip one body byte: the entry fails its checksum and is not served.
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let third = start(&cfg).await;
    let r = get(third.main, "/products/d.bin").await;
    assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
    assert!(r.body.as_ref() == body.as_slice());
    assert_eq!(s3_gets(&s3, "d.bin"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_startup_is_a_miss_and_used_once_it_is_up() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "one.txt", b"one");
    s3.write_object(BKT, "two.txt", b"two");
    let mut redis = RedisServer::reserve();
    let proxy = start(&proxy_config(&s3, redis_cache(&redis, "down:"))).await;

    let r = get(proxy.main, "/products/one.txt").await;
    assert_eq!(
        r.status,
        200,
        "Redis down is never a client error: {}",
        r.describe()
    );
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let r = get(proxy.main, "/products/one.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    let errors = eventually("a counted Redis error", DEADLINE, || async {
        let (_, samples) = scrape(&proxy).await;
        match sample_value(
            &samples,
            "yatagarasu_cache_errors_total",
            &[("tier", "redis")],
        ) {
            Some(v) if v >= 1.0 => Ok(v),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(errors >= 1.0);

    redis.run().await;
    let conn = redis.connection(0).await;
    let keys = redis_keys(&conn);
    // A new object is written to Redis once it is up (the tier reconnects).
    eventually("an entry in Redis", DEADLINE, || async {
        let r = get(proxy.main, "/products/two.txt").await;
        assert_eq!(r.status, 200);
        if keys("down:*").await?.is_empty() {
            // Purge so the next GET fills (and writes to Redis) again.
            send_with_body(
                proxy.admin,
                "POST",
                "/admin/cache/purge",
                &[("x-yatagarasu-admin", "1")],
                Bytes::new(),
            )
            .await;
            Err("no key yet".into())
        } else {
            Ok(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_entries_and_purges_through_redis() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "shared.txt", b"shared bytes");
    s3.write_object(BKT, "other.txt", b"other bytes");
    let redis = RedisServer::start().await;
    let cfg = proxy_config(&s3, redis_cache(&redis, "pair:"));
    let a = start(&cfg).await;
    let b = start(&cfg).await;
    let conn = redis.connection(0).await;
    let keys = redis_keys(&conn);

    for key in ["shared.txt", "other.txt"] {
        let r = get(a.main, &format!("/products/{key}")).await;
        assert_eq!(r.header("x-cache"), Some("MISS"));
    }
    eventually("both entries in Redis", DEADLINE, || async {
        let keys = keys("pair:*").await?;
        if keys.len() >= 2 {
            Ok(())
        } else {
            Err(format!("{keys:?}"))
        }
    })
    .await;
    for key in ["shared.txt", "other.txt"] {
        let r = get(b.main, &format!("/products/{key}")).await;
        assert_eq!(r.header("x-cache"), Some("HIT redis"), "{}", r.describe());
        let r = get(b.main, &format!("/products/{key}")).await;
        assert_eq!(r.header("x-cache"), Some("HIT memory"));
    }
    assert_eq!(s3_gets(&s3, "shared.txt"), 1, "B never went to S3");

    // Purge one object on A: B's memory drops it too (pub/sub), Redis has it no more.
    let purge = |path: &'static str| {
        let admin = a.admin;
        async move {
            let r = send_with_body(
                admin,
                "POST",
                path,
                &[("x-yatagarasu-admin", "1")],
                Bytes::new(),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.describe());
            r.json()
        }
    };
    let v = purge("/admin/cache/purge/products/shared.txt").await;
    assert_eq!(v["broadcast"], true, "{v}");
    eventually("B dropped the purged object", DEADLINE, || async {
        let r = get(b.main, "/products/shared.txt").await;
        match r.header("x-cache") {
            Some("MISS") => Ok(()),
            other => {
                // The broadcast may have preceded B's subscription: purge again.
                purge("/admin/cache/purge/products/shared.txt").await;
                Err(format!("{other:?}"))
            }
        }
    })
    .await;
    let r = get(b.main, "/products/other.txt").await;
    assert_eq!(
        r.header("x-cache"),
        Some("HIT memory"),
        "an object purge spares the rest"
    );

    // Purge everything on A: B's memory empties too.
    purge("/admin/cache/purge").await;
    eventually("B dropped everything", DEADLINE, || async {
        let r = get(b.main, "/products/other.txt").await;
        match r.header("x-cache") {
            Some("MISS") => Ok(()),
            other => {
                purge("/admin/cache/purge").await;
                Err(format!("{other:?}"))
            }
        }
    })
    .await;

    // Purge one bucket on B this time: A drops its entries.
    get(a.main, "/products/other.txt").await;
    let r = get(a.main, "/products/other.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"), "A holds it now");
    let r = send_with_body(
        b.admin,
        "POST",
        "/admin/cache/purge/products",
        &[("x-yatagarasu-admin", "1")],
        Bytes::new(),
    )
    .await;
    assert_eq!(r.json()["broadcast"], true);
    eventually("A dropped the bucket", DEADLINE, || async {
        let r = get(a.main, "/products/other.txt").await;
        match r.header("x-cache") {
            Some("MISS") => Ok(()),
            other => {
                send_with_body(
                    b.admin,
                    "POST",
                    "/admin/cache/purge/products",
                    &[("x-yatagarasu-admin", "1")],
                    Bytes::new(),
                )
                .await;
                Err(format!("{other:?}"))
            }
        }
    })
    .await;
}

/// Memory, disk and Redis in that order, with the given fresh lifetime.
fn all_tiers(dir: &Path, redis: &RedisServer, prefix: &str, ttl_seconds: u64) -> String {
    format!(
        "cache:\n  enabled: true\n  cache_layers: [memory, disk, redis]\n  stale_if_error_seconds: 300\n  \
         memory:\n    default_ttl_seconds: {ttl_seconds}\n  disk:\n    cache_dir: {}\n    \
         max_disk_cache_size_mb: 64\n  redis:\n    redis_url: {}\n    key_prefix: {}\n    timeout_ms: 2000\n",
        q(dir.to_str().unwrap()),
        q(&redis.url()),
        q(prefix)
    )
}

/// Waits until the fill of one object reached the disk tier under `dir`
/// and Redis under `pattern` (both written in the background).
async fn wait_written(
    dir: &Path,
    keys: &impl Fn(&'static str) -> KeysFuture,
    pattern: &'static str,
) {
    eventually("the entry on disk and in Redis", DEADLINE, || async {
        let in_redis = keys(pattern).await?;
        let on_disk = entry_files(dir);
        if in_redis.is_empty() || on_disk.is_empty() {
            Err(format!("redis {in_redis:?}, disk {on_disk:?}"))
        } else {
            Ok(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_deleted_in_s3_is_not_served_stale_from_any_tier_during_an_outage() {
    let mut s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "gone.txt", b"deleted bytes");
    let redis = RedisServer::start().await;
    let conn = redis.connection(0).await;
    let keys = redis_keys(&conn);
    let dir = tempfile::tempdir().unwrap();
    let a = start(&proxy_config(
        &s3,
        all_tiers(dir.path(), &redis, "gone:", 1),
    ))
    .await;
    // A second instance on the same Redis, holding the object in memory.
    let b = start(&proxy_config(&s3, redis_cache(&redis, "gone:"))).await;

    let r = get(a.main, "/products/gone.txt").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    wait_written(dir.path(), &keys, "gone:*").await;
    let r = get(b.main, "/products/gone.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT redis"), "{}", r.describe());

    // Deleted in S3: once the entry is stale, A's revalidation learns it (404).
    std::fs::remove_file(s3.object_path(BKT, "gone.txt")).unwrap();
    eventually("a 404 once the entry is stale", DEADLINE, || async {
        let r = get(a.main, "/products/gone.txt").await;
        match r.status {
            404 => Ok(()),
            200 => Err(format!("still {:?}", r.header("x-cache"))),
            other => panic!("unexpected {other}: {}", r.describe()),
        }
    })
    .await;

    // S3 goes down: no tier of A answers with the deleted object, stale or not.
    s3.stop().await;
    let r = get(a.main, "/products/gone.txt").await;
    assert_ne!(
        r.status,
        200,
        "A served the deleted object: {}",
        r.describe()
    );
    assert_ne!(r.header("x-cache"), Some("STALE"));
    // Nor does B once the forget reached it through the purge channel.
    eventually("B forgot the deleted object", DEADLINE, || async {
        let r = get(b.main, "/products/gone.txt").await;
        if r.status == 200 {
            Err(format!("B served it: {:?}", r.header("x-cache")))
        } else {
            Ok(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_repointed_across_a_restart_never_answers_from_the_old_bucket() {
    const NEW: &str = "tiers-new";
    const THIRD: &str = "tiers-third";
    let s3 = S3Server::start(&[BKT, NEW, THIRD]).await;
    s3.write_object(BKT, "hello.txt", b"old bucket bytes");
    s3.write_object(NEW, "hello.txt", b"new bucket bytes");
    s3.write_object(THIRD, "hello.txt", b"third bucket bytes");
    let redis = RedisServer::start().await;
    let conn = redis.connection(0).await;
    let keys = redis_keys(&conn);
    let dir = tempfile::tempdir().unwrap();
    let cache = all_tiers(dir.path(), &redis, "repoint:", 3600);
    let repointed = |s3_bucket: &str, cache: &str| {
        let mut cfg = Config::new(vec![BucketCfg::new("products", &s3, s3_bucket)]);
        cfg.readiness_probe_interval_seconds = 3600;
        cfg.extra_yaml = cache.to_owned();
        cfg
    };

    let first = start(&repointed(BKT, &cache)).await;
    let r = get(first.main, "/products/hello.txt").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_eq!(r.body.as_ref(), b"old bucket bytes");
    wait_written(dir.path(), &keys, "repoint:*").await;
    drop(first);

    // Same disk directory and Redis, `products` now points at another bucket.
    let second = start(&repointed(NEW, &cache)).await;
    let r = get(second.main, "/products/hello.txt").await;
    assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"new bucket bytes");
    let r = get(second.main, "/products/hello.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    assert_eq!(r.body.as_ref(), b"new bucket bytes");
    drop(second);

    // Redis alone (another instance's mapping): its entries are not ours either.
    let third = start(&repointed(THIRD, &redis_cache(&redis, "repoint:"))).await;
    let r = get(third.main, "/products/hello.txt").await;
    assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"third bucket bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_right_after_a_fill_is_not_undone_by_the_background_writes() {
    let s3 = S3Server::start(&[BKT]).await;
    // Large enough that the disk and Redis writes are still running when the purge arrives.
    const LEN: u64 = 4 << 20;
    const KEYS: usize = 10;
    for i in 0..KEYS {
        s3.write_pattern_object(BKT, &format!("p{i}.bin"), LEN)
            .await;
    }
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let proxy = start(&proxy_config(
        &s3,
        all_tiers(dir.path(), &redis, "race:", 3600),
    ))
    .await;

    let mut resurrected = Vec::new();
    for i in 0..KEYS {
        let path = format!("/products/p{i}.bin");
        let r = get(proxy.main, &path).await;
        assert_eq!(r.header("x-cache"), Some("MISS"), "{}", r.describe());
        assert_eq!(r.body.len() as u64, LEN);
        let purged = send_with_body(
            proxy.admin,
            "POST",
            &format!("/admin/cache/purge{path}"),
            &[("x-yatagarasu-admin", "1")],
            Bytes::new(),
        )
        .await;
        assert_eq!(purged.status, 200, "{}", purged.describe());
        let r = get(proxy.main, &path).await;
        assert_eq!(r.status, 200);
        if r.header("x-cache") != Some("MISS") {
            resurrected.push(format!("{path}: {:?}", r.header("x-cache")));
        }
    }
    assert!(
        resurrected.is_empty(),
        "purged objects served from the cache again: {resurrected:?}"
    );
}
