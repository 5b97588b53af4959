//! The disk and Redis tiers through the real binary: a disk cache that
//! survives a restart and refuses a corrupted file, a Redis that is down and
//! comes back, and purges shared by two instances on one Redis.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use common::redis::RedisServer;
use common::*;
use yatagarasu::cache::CacheKey;

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

fn entry_file(dir: &Path, object: &str) -> PathBuf {
    let hex = CacheKey {
        bucket: Arc::from("products"),
        object: object.to_owned(),
        version_id: None,
    }
    .hex();
    dir.join(&hex[..2]).join(hex)
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
    let file = entry_file(dir.path(), "d.bin");

    let first = start(&cfg).await;
    let r = get(first.main, "/products/d.bin").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let original_type = r.header("content-type").map(str::to_owned);
    eventually("the entry file", DEADLINE, || async {
        if file.is_file() {
            Ok(())
        } else {
            Err(format!("{file:?} missing"))
        }
    })
    .await;
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
