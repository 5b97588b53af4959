//! The disk and Redis cache tiers through their public API (`CacheTier`),
//! against real files and a real `redis-server` child process.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::DEADLINE;
use common::redis::RedisServer;
use http::{HeaderMap, HeaderValue};
use tokio::sync::mpsc;
use yatagarasu::cache::disk::DiskTier;
use yatagarasu::cache::redis::RedisTier;
use yatagarasu::cache::{
    BackendId, CacheKey, CacheTier, CachedObject, ObjectMeta, PurgeScope, TierError,
};
use yatagarasu::config::{DiskCacheConfig, RedisCacheConfig, Secret};

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

fn key(bucket: &str, object: &str) -> CacheKey {
    CacheKey {
        bucket: Arc::from(bucket),
        backend: Default::default(),
        object: object.to_owned(),
        version_id: None,
    }
}

fn versioned(bucket: &str, object: &str, version: &str) -> CacheKey {
    CacheKey {
        version_id: Some(version.to_owned()),
        ..key(bucket, object)
    }
}

/// An object with every kind of replayed header, fresh for an hour.
fn object(body: &[u8]) -> CachedObject {
    object_fresh_until(body, SystemTime::now() + Duration::from_secs(3600))
}

fn object_fresh_until(body: &[u8], fresh_until: SystemTime) -> CachedObject {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("content-type", "image/png"),
        ("etag", "\"0123abcd\""),
        ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("cache-control", "public, max-age=600"),
        ("content-disposition", "attachment; filename=\"a b.png\""),
        ("content-encoding", "identity"),
        ("content-language", "ja"),
        ("expires", "Thu, 22 Oct 2015 07:28:00 GMT"),
        ("x-amz-meta-owner", "カラス"),
        ("x-amz-meta-tags", "one"),
        ("x-amz-version-id", "3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY"),
    ] {
        let value = HeaderValue::from_bytes(value.as_bytes()).unwrap();
        headers.append(name, value);
    }
    headers.append("x-amz-meta-tags", HeaderValue::from_static("two"));
    CachedObject {
        meta: Arc::new(ObjectMeta {
            headers,
            content_length: body.len() as u64,
            etag: Some("\"0123abcd\"".to_owned()),
            last_modified: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480)),
            stored_at: SystemTime::now(),
            fresh_until,
        }),
        body: Bytes::copy_from_slice(body),
    }
}

#[track_caller]
fn assert_same(got: &CachedObject, expected: &CachedObject) {
    assert_eq!(*got.meta, *expected.meta, "metadata differs");
    assert!(
        got.body == expected.body,
        "body differs ({} bytes, expected {})",
        got.body.len(),
        expected.body.len()
    );
}

fn disk_config(dir: &Path, max_size: u64) -> DiskCacheConfig {
    DiskCacheConfig {
        cache_dir: dir.to_path_buf(),
        max_size,
    }
}

const GRACE: Duration = Duration::from_secs(300);

async fn open_disk(dir: &Path, max_size: u64) -> DiskTier {
    DiskTier::open(&disk_config(dir, max_size), GRACE)
        .await
        .expect("opening the disk tier")
}

/// Every regular file under `dir`, relative, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// Disk tier
// ---------------------------------------------------------------------------

#[tokio::test]
async fn disk_round_trip_is_byte_exact_with_headers() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open_disk(dir.path(), 1 << 30).await;
    let k = key("products", "img/logo.png");
    let stored = object(&common::pattern_bytes(100_000));

    assert!(
        tier.get(&k).await.unwrap().is_none(),
        "empty tier must miss"
    );
    tier.put(&k, stored.clone()).await.unwrap();
    let got = tier.get(&k).await.unwrap().expect("a hit after put");
    assert_same(&got, &stored);
    let tags: Vec<_> = got.meta.headers.get_all("x-amz-meta-tags").iter().collect();
    assert_eq!(tags, ["one", "two"], "repeated headers keep their order");

    // The file is named by the key's hex digest under a 2-character fan-out.
    let hex = k.hex();
    assert_eq!(files_under(dir.path()), [format!("{}/{hex}", &hex[..2])]);
    assert_eq!(tier.entry_path(&k), dir.path().join(&hex[..2]).join(&hex));

    // A version of the same object is a different entry.
    let v1 = versioned("products", "img/logo.png", "v1");
    assert!(tier.get(&v1).await.unwrap().is_none());

    // Replacing an entry serves the new bytes.
    let replaced = object(b"new bytes");
    tier.put(&k, replaced.clone()).await.unwrap();
    assert_same(&tier.get(&k).await.unwrap().unwrap(), &replaced);

    let stats = tier.stats();
    assert_eq!((stats.hits, stats.misses, stats.items), (2, 2, 1));
    assert_eq!(
        stats.bytes,
        std::fs::metadata(tier.entry_path(&k)).unwrap().len()
    );
}

#[tokio::test]
async fn disk_entries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = key("products", "a.txt");
    let b = versioned("products", "b.txt", "v7");
    let (obj_a, obj_b) = (object(b"alpha"), object(&common::pattern_bytes(4096)));
    {
        // The first "process".
        let tier = open_disk(dir.path(), 1 << 30).await;
        tier.put(&a, obj_a.clone()).await.unwrap();
        tier.put(&b, obj_b.clone()).await.unwrap();
    }
    // The second "process": a new tier over the same directory.
    let tier = open_disk(dir.path(), 1 << 30).await;
    let stats = tier.stats();
    assert_eq!(stats.items, 2, "the rebuilt index holds both entries");
    let on_disk: u64 = files_under(dir.path())
        .iter()
        .map(|f| std::fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    assert_eq!(stats.bytes, on_disk);
    assert_same(
        &tier.get(&a).await.unwrap().expect("a after restart"),
        &obj_a,
    );
    assert_same(
        &tier.get(&b).await.unwrap().expect("b after restart"),
        &obj_b,
    );

    // Purging by object works on entries found by the scan (key read back
    // from the file header).
    let purged = tier
        .purge(&PurgeScope::Object {
            bucket: "products".into(),
            key: "b.txt".into(),
        })
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(files_under(dir.path()).len(), 1);
}

#[tokio::test]
async fn disk_corrupted_entry_is_a_miss_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open_disk(dir.path(), 1 << 30).await;
    let k = key("products", "c.bin");
    tier.put(&k, object(&common::pattern_bytes(10_000)))
        .await
        .unwrap();

    // Flip one byte in the middle of the body.
    let path = tier.entry_path(&k);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    match tier.get(&k).await {
        Err(TierError::Corrupt(_)) => {}
        other => panic!("a corrupted entry must fail with Corrupt, got {other:?}"),
    }
    assert!(!path.exists(), "the corrupted file must be deleted");
    assert!(
        tier.get(&k).await.unwrap().is_none(),
        "then it is a plain miss"
    );
    let stats = tier.stats();
    assert_eq!(
        (stats.hits, stats.misses, stats.items, stats.bytes),
        (0, 2, 0, 0)
    );
}

#[tokio::test]
async fn disk_scan_deletes_broken_files_and_ignores_foreign_ones() {
    let dir = tempfile::tempdir().unwrap();
    let good = key("products", "good");
    let torn = key("products", "torn");
    let misnamed = key("products", "misnamed");
    let (torn_path, misnamed_path) = {
        let tier = open_disk(dir.path(), 1 << 30).await;
        for k in [&good, &torn, &misnamed] {
            tier.put(k, object(b"payload")).await.unwrap();
        }
        (tier.entry_path(&torn), tier.entry_path(&misnamed))
    };
    // A torn write (the rename would never expose one, but a crash of the
    // filesystem could): truncated in the middle of the metadata.
    let bytes = std::fs::read(&torn_path).unwrap();
    std::fs::write(&torn_path, &bytes[..40]).unwrap();
    // A valid entry under the wrong name.
    let wrong_name = misnamed_path.with_file_name("0".repeat(64));
    std::fs::rename(&misnamed_path, &wrong_name).unwrap();
    // Leftovers of an interrupted write, and files that are not entries.
    std::fs::create_dir_all(dir.path().join(".tmp")).unwrap();
    std::fs::write(dir.path().join(".tmp/deadbeef.1.0"), b"half an entry").unwrap();
    std::fs::write(dir.path().join("README"), b"not an entry").unwrap();
    std::fs::create_dir_all(dir.path().join("zz")).unwrap();
    std::fs::write(dir.path().join("zz/notes.txt"), b"not an entry").unwrap();

    let tier = open_disk(dir.path(), 1 << 30).await;
    assert_eq!(tier.stats().items, 1, "only the intact entry is indexed");
    assert!(tier.get(&good).await.unwrap().is_some());
    assert!(tier.get(&torn).await.unwrap().is_none());
    assert!(!torn_path.exists(), "a torn entry is deleted by the scan");
    assert!(
        !wrong_name.exists(),
        "an entry under another key's name is deleted"
    );
    assert!(
        !dir.path().join(".tmp/deadbeef.1.0").exists(),
        "temp files of interrupted writes are removed"
    );
    assert!(
        dir.path().join("README").exists(),
        "foreign files are left alone"
    );
    assert!(dir.path().join("zz/notes.txt").exists());
}

#[tokio::test]
async fn disk_writes_leave_no_temp_files_visible() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open_disk(dir.path(), 1 << 30).await;
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..20 {
        let tier = tier.clone();
        writes.spawn(async move {
            let k = key("products", "same-key");
            tier.put(&k, object(&common::pattern_bytes(1000 + i))).await
        });
    }
    while let Some(done) = writes.join_next().await {
        done.unwrap().unwrap();
    }
    // Whatever write won, the entry is complete and intact.
    let got = tier
        .get(&key("products", "same-key"))
        .await
        .unwrap()
        .unwrap();
    let len = got.body.len();
    assert!((1000..1020).contains(&len), "unexpected body length {len}");
    assert!(got.body[..] == common::pattern_bytes(len)[..]);
    let files = files_under(dir.path());
    assert_eq!(
        files.len(),
        1,
        "only the final entry file remains: {files:?}"
    );
}

#[tokio::test]
async fn disk_evicts_least_recently_used_to_stay_under_max_size() {
    let dir = tempfile::tempdir().unwrap();
    let body = common::pattern_bytes(10_000);
    // Measure one entry's file size, then allow three and a half of them.
    let entry_size = {
        let probe = tempfile::tempdir().unwrap();
        let tier = open_disk(probe.path(), 1 << 30).await;
        tier.put(&key("products", "k0"), object(&body))
            .await
            .unwrap();
        tier.stats().bytes
    };
    let max = entry_size * 7 / 2;
    let tier = open_disk(dir.path(), max).await;
    let keys: Vec<_> = (0..4).map(|i| key("products", &format!("k{i}"))).collect();
    for k in &keys[..3] {
        tier.put(k, object(&body)).await.unwrap();
    }
    // Use k0, so k1 becomes the least recently used.
    assert!(tier.get(&keys[0]).await.unwrap().is_some());
    tier.put(&keys[3], object(&body)).await.unwrap();

    let stats = tier.stats();
    assert!(
        stats.bytes <= max,
        "{} bytes held, limit {max}",
        stats.bytes
    );
    assert_eq!((stats.items, stats.evictions), (3, 1));
    assert!(
        tier.get(&keys[1]).await.unwrap().is_none(),
        "k1 was evicted"
    );
    assert!(!tier.entry_path(&keys[1]).exists(), "its file is deleted");
    for k in [&keys[0], &keys[2], &keys[3]] {
        assert!(tier.get(k).await.unwrap().is_some(), "{} kept", k.object);
    }

    // An entry larger than the whole tier is not stored (and evicts nothing).
    tier.put(
        &key("products", "huge"),
        object(&common::pattern_bytes(max as usize)),
    )
    .await
    .unwrap();
    assert_eq!(tier.stats().items, 3);

    // A restart with a smaller limit evicts down to it.
    drop(tier);
    let tier = open_disk(dir.path(), entry_size).await;
    assert_eq!(tier.stats().items, 1);
    assert_eq!(files_under(dir.path()).len(), 1);
}

#[tokio::test]
async fn disk_keeps_an_entry_as_large_as_the_whole_tier() {
    let dir = tempfile::tempdir().unwrap();
    let body = common::pattern_bytes(200_000);
    let entry_size = {
        let probe = tempfile::tempdir().unwrap();
        let tier = open_disk(probe.path(), 1 << 30).await;
        tier.put(&key("products", "big"), object(&body))
            .await
            .unwrap();
        tier.stats().bytes
    };
    let tier = open_disk(dir.path(), entry_size).await;
    tier.put(&key("products", "small"), object(b"small"))
        .await
        .unwrap();
    tier.put(&key("products", "big"), object(&body))
        .await
        .unwrap();

    let got = tier.get(&key("products", "big")).await.unwrap();
    assert!(
        got.is_some_and(|o| o.body[..] == body[..]),
        "big entry served"
    );
    let stats = tier.stats();
    assert_eq!((stats.items, stats.bytes), (1, entry_size));
    assert!(tier.get(&key("products", "small")).await.unwrap().is_none());
    assert_eq!(files_under(dir.path()).len(), 1);
}

#[tokio::test]
async fn disk_restart_over_the_limit_keeps_the_newest_files() {
    let dir = tempfile::tempdir().unwrap();
    let body = common::pattern_bytes(10_000);
    let keys: Vec<_> = (0..4).map(|i| key("products", &format!("k{i}"))).collect();
    let entry_size = {
        let tier = open_disk(dir.path(), 1 << 30).await;
        for (age, k) in keys.iter().rev().enumerate() {
            tier.put(k, object(&body)).await.unwrap();
            // k0 oldest, k3 newest, whatever the clock's granularity.
            let hours_ago = Duration::from_secs(3600 * (age as u64 + 1));
            std::fs::File::options()
                .write(true)
                .open(tier.entry_path(k))
                .unwrap()
                .set_modified(std::time::SystemTime::now() - hours_ago)
                .unwrap();
        }
        tier.stats().bytes / 4
    };

    let tier = open_disk(dir.path(), entry_size * 5 / 2).await;
    let stats = tier.stats();
    assert_eq!((stats.items, stats.evictions), (2, 2));
    for (k, kept) in keys.iter().zip([false, false, true, true]) {
        assert_eq!(tier.entry_path(k).exists(), kept, "{}", k.object);
        assert_eq!(tier.get(k).await.unwrap().is_some(), kept, "{}", k.object);
    }
}

#[tokio::test]
async fn disk_purge_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open_disk(dir.path(), 1 << 30).await;
    let entries = [
        key("a", "x"),
        versioned("a", "x", "v1"),
        versioned("a", "x", "v2"),
        key("a", "y"),
        key("b", "x"),
        key("b", "z"),
    ];
    for k in &entries {
        tier.put(k, object(k.object.as_bytes())).await.unwrap();
    }
    let object_scope = PurgeScope::Object {
        bucket: "a".into(),
        key: "x".into(),
    };
    assert_eq!(tier.purge(&object_scope).await.unwrap(), 3, "every version");
    for k in &entries[..3] {
        assert!(tier.get(k).await.unwrap().is_none());
        assert!(!tier.entry_path(k).exists());
    }
    assert!(tier.get(&entries[3]).await.unwrap().is_some());
    assert!(
        tier.get(&entries[4]).await.unwrap().is_some(),
        "same key, other bucket"
    );

    assert_eq!(
        tier.purge(&PurgeScope::Bucket("b".into())).await.unwrap(),
        2
    );
    assert!(tier.get(&entries[4]).await.unwrap().is_none());
    assert!(tier.get(&entries[3]).await.unwrap().is_some());

    assert_eq!(tier.purge(&PurgeScope::All).await.unwrap(), 1);
    assert_eq!(files_under(dir.path()), Vec::<String>::new());
    let stats = tier.stats();
    assert_eq!((stats.items, stats.bytes), (0, 0));
}

#[tokio::test]
async fn disk_returns_stale_entries_but_deletes_long_expired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open_disk(dir.path(), 1 << 30).await;
    let now = SystemTime::now();
    let stale = key("products", "stale");
    let dead = key("products", "dead");
    tier.put(&stale, object_fresh_until(b"s", now - GRACE / 2))
        .await
        .unwrap();
    tier.put(&dead, object_fresh_until(b"d", now - GRACE * 2))
        .await
        .unwrap();

    let got = tier
        .get(&stale)
        .await
        .unwrap()
        .expect("stale entries are returned");
    assert!(got.meta.fresh_until < SystemTime::now());
    assert!(tier.get(&dead).await.unwrap().is_none());
    assert!(
        !tier.entry_path(&dead).exists(),
        "long-expired entries are deleted"
    );

    // The startup scan drops them too.
    tier.put(&dead, object_fresh_until(b"d", now - GRACE * 2))
        .await
        .unwrap();
    drop(tier);
    let tier = open_disk(dir.path(), 1 << 30).await;
    assert_eq!(tier.stats().items, 1);
    assert!(!tier.entry_path(&dead).exists());
}

// ---------------------------------------------------------------------------
// Redis tier
// ---------------------------------------------------------------------------

fn redis_config(server: &RedisServer, prefix: &str) -> RedisCacheConfig {
    RedisCacheConfig {
        url: Secret::new(server.url()),
        cluster_nodes: Vec::new(),
        password: None,
        db: 0,
        key_prefix: prefix.to_owned(),
        ttl: Duration::from_secs(600),
        pool_size: 2,
        timeout: Duration::from_secs(2),
    }
}

async fn redis_exists(server: &RedisServer, db: i64, key: &str) -> bool {
    let mut conn = server.connection(db).await;
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap()
        == 1
}

/// Runs `op` under [`DEADLINE`], so a hang fails the test instead of blocking it.
async fn bounded<T>(what: &str, op: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, op)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {DEADLINE:?}"))
}

#[tokio::test]
async fn redis_round_trip_sets_the_ttl() {
    let server = RedisServer::start().await;
    let tier = RedisTier::new(&redis_config(&server, "yg:")).unwrap();
    let k = key("products", "img/logo.png");
    let stored = object(&common::pattern_bytes(300_000));

    assert!(tier.get(&k).await.unwrap().is_none());
    tier.put(&k, stored.clone()).await.unwrap();
    assert_same(&tier.get(&k).await.unwrap().expect("hit"), &stored);

    let redis_key = format!(
        "yg:products:{}:{}",
        CacheKey::object_hex("products", "img/logo.png"),
        k.hex()
    );
    assert_eq!(tier.redis_key(&k), redis_key);
    let mut conn = server.connection(0).await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&redis_key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        ttl > 0 && ttl <= 600_000,
        "the write sets a TTL of at most 600 s, got {ttl} ms"
    );
    let stats = tier.stats();
    assert_eq!((stats.hits, stats.misses), (1, 1));

    // A value that is not a valid entry is rejected and removed.
    redis::cmd("SET")
        .arg(&redis_key)
        .arg(b"YTGC\x01\x00garbage".as_slice())
        .query_async::<()>(&mut conn)
        .await
        .unwrap();
    assert!(matches!(tier.get(&k).await, Err(TierError::Corrupt(_))));
    assert!(!redis_exists(&server, 0, &redis_key).await);
}

#[tokio::test]
async fn redis_password_and_database_are_applied() {
    let server = RedisServer::start_with_password("s3cr3t-pw").await;
    let mut config = redis_config(&server, "yg:");
    let k = key("products", "p");

    // Without the password every operation fails (and says nothing secret).
    let tier = RedisTier::new(&config).unwrap();
    let err = bounded("get without password", tier.get(&k))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TierError::Redis(_) | TierError::Timeout),
        "{err:?}"
    );

    config.password = Some(Secret::new("s3cr3t-pw"));
    config.db = 3;
    let tier = RedisTier::new(&config).unwrap();
    assert!(
        !format!("{tier:?}").contains("s3cr3t"),
        "Debug hides secrets"
    );
    tier.put(&k, object(b"in db 3")).await.unwrap();
    assert!(redis_exists(&server, 3, &tier.redis_key(&k)).await);
    assert!(!redis_exists(&server, 0, &tier.redis_key(&k)).await);
    assert_eq!(&tier.get(&k).await.unwrap().unwrap().body[..], b"in db 3");
}

#[tokio::test]
async fn redis_down_at_startup_then_up() {
    let mut server = RedisServer::reserve();
    let tier = RedisTier::new(&redis_config(&server, "yg:")).expect("built without connecting");
    let k = key("products", "k");

    let err = bounded("get while down", tier.get(&k)).await.unwrap_err();
    assert!(
        matches!(err, TierError::Redis(_) | TierError::Timeout),
        "{err:?}"
    );
    let err = bounded("put while down", tier.put(&k, object(b"v")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TierError::Redis(_) | TierError::Timeout),
        "{err:?}"
    );
    assert_eq!(tier.stats().misses, 1, "a failed lookup counts as a miss");

    server.run().await;
    common::eventually("the tier recovers once Redis is up", DEADLINE, || async {
        tier.put(&k, object(b"v")).await.map_err(|e| e.to_string())
    })
    .await;
    assert_eq!(&tier.get(&k).await.unwrap().unwrap().body[..], b"v");
}

#[tokio::test]
async fn redis_killed_mid_test_errors_then_recovers() {
    let mut server = RedisServer::start().await;
    let tier = RedisTier::new(&redis_config(&server, "yg:")).unwrap();
    let k = key("products", "k");
    tier.put(&k, object(b"before")).await.unwrap();
    assert!(tier.get(&k).await.unwrap().is_some());

    server.stop();
    for _ in 0..3 {
        let got = bounded("get after Redis died", tier.get(&k)).await;
        assert!(
            got.is_err(),
            "a dead Redis is an error (a miss), got {got:?}"
        );
    }
    let put = bounded("put after Redis died", tier.put(&k, object(b"x"))).await;
    assert!(put.is_err());

    // It comes back empty (no persistence); the tier reconnects.
    server.run().await;
    common::eventually("the tier reconnects", DEADLINE, || async {
        match tier.get(&k).await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    tier.put(&k, object(b"after")).await.unwrap();
    assert_eq!(&tier.get(&k).await.unwrap().unwrap().body[..], b"after");
}

#[tokio::test]
async fn redis_purge_scopes() {
    let server = RedisServer::start().await;
    let tier = RedisTier::new(&redis_config(&server, "yg:")).unwrap();
    // Another deployment on the same Redis, with a prefix that glob-matches ours.
    let other = RedisTier::new(&redis_config(&server, "yg*")).unwrap();
    let entries = [
        key("a", "x"),
        versioned("a", "x", "v1"),
        versioned("a", "x", "v2"),
        key("a", "y"),
        key("b", "x"),
        key("a*", "z"),
    ];
    for k in &entries {
        tier.put(k, object(k.object.as_bytes())).await.unwrap();
    }
    let foreign = key("a", "x");
    other.put(&foreign, object(b"theirs")).await.unwrap();
    let present = |k: &CacheKey| {
        let redis_key = tier.redis_key(k);
        let server = &server;
        async move { redis_exists(server, 0, &redis_key).await }
    };

    let object_scope = PurgeScope::Object {
        bucket: "a".into(),
        key: "x".into(),
    };
    assert_eq!(tier.purge(&object_scope).await.unwrap(), 3, "every version");
    for k in &entries[..3] {
        assert!(!present(k).await, "{k:?} purged");
    }
    for k in &entries[3..] {
        assert!(present(k).await, "{k:?} kept");
    }

    // Bucket `a*` must not match bucket `a` (glob characters are escaped).
    assert_eq!(
        tier.purge(&PurgeScope::Bucket("a*".into())).await.unwrap(),
        1
    );
    assert!(present(&entries[3]).await);

    assert_eq!(
        tier.purge(&PurgeScope::Bucket("a".into())).await.unwrap(),
        1
    );
    assert!(!present(&entries[3]).await);
    assert!(present(&entries[4]).await);

    assert_eq!(tier.purge(&PurgeScope::All).await.unwrap(), 1);
    assert!(!present(&entries[4]).await);
    assert!(
        redis_exists(&server, 0, &other.redis_key(&foreign)).await,
        "another prefix's entries survive a purge of everything"
    );
}

#[tokio::test]
async fn redis_purge_many_keys_uses_scan_cursor() {
    let server = RedisServer::start().await;
    let tier = RedisTier::new(&redis_config(&server, "yg:")).unwrap();
    for i in 0..1200 {
        tier.put(&key("bulk", &format!("k{i}")), object(b"."))
            .await
            .unwrap();
    }
    tier.put(&key("keep", "k"), object(b".")).await.unwrap();
    assert_eq!(
        tier.purge(&PurgeScope::Bucket("bulk".into()))
            .await
            .unwrap(),
        1200
    );
    let mut conn = server.connection(0).await;
    let left: i64 = redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap();
    assert_eq!(left, 1);
}

#[tokio::test]
async fn redis_purge_broadcast_reaches_other_instances_only() {
    let mut server = RedisServer::start().await;
    let a = RedisTier::new(&redis_config(&server, "yg:")).unwrap();
    let b = RedisTier::new(&redis_config(&server, "yg:")).unwrap();
    let other_prefix = RedisTier::new(&redis_config(&server, "other:")).unwrap();
    let (a_tx, mut a_rx) = mpsc::channel(16);
    let (b_tx, mut b_rx) = mpsc::channel(16);
    let a_sub = a.subscribe_purges(a_tx);
    let b_sub = b.subscribe_purges(b_tx);
    assert!(a_sub.wait_subscribed(DEADLINE).await, "a subscribed");
    assert!(b_sub.wait_subscribed(DEADLINE).await, "b subscribed");

    let scope = PurgeScope::Object {
        bucket: "products".into(),
        key: "img/logo.png".into(),
    };
    other_prefix.publish_purge(&PurgeScope::All).await.unwrap();
    a.publish_purge(&scope).await.unwrap();
    let got = bounded("b receives a's purge", b_rx.recv()).await;
    assert_eq!(got, Some(scope), "another prefix's purge is not delivered");

    // a ignores its own message: the first thing it receives is b's.
    b.publish_purge(&PurgeScope::Bucket("products".into()))
        .await
        .unwrap();
    let got = bounded("a receives b's purge", a_rx.recv()).await;
    assert_eq!(got, Some(PurgeScope::Bucket("products".into())));

    // The subscriber survives a Redis restart.
    server.stop();
    common::eventually("b notices the lost subscription", DEADLINE, || async {
        if b_sub.is_subscribed() {
            Err("still subscribed".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    server.run().await;
    assert!(b_sub.wait_subscribed(DEADLINE).await, "b resubscribes");
    common::eventually("a can publish again", DEADLINE, || async {
        a.publish_purge(&PurgeScope::All)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    let got = bounded("b receives a purge after the restart", b_rx.recv()).await;
    assert_eq!(got, Some(PurgeScope::All));
    assert!(a_rx.try_recv().is_err(), "a never receives its own purges");
}

#[tokio::test]
async fn redis_rediss_url_speaks_tls() {
    // A plain-TCP server: a rediss:// client must attempt a TLS handshake
    // (and fail cleanly), not talk plain text and not panic building rustls.
    let server = RedisServer::start().await;
    let mut config = redis_config(&server, "yg:");
    config.url = Secret::new(format!("rediss://127.0.0.1:{}", server.port));
    let tier = RedisTier::new(&config).expect("a rediss:// URL is accepted");
    let k = key("products", "k");
    let put = bounded("put over TLS to a plain server", tier.put(&k, object(b"v"))).await;
    assert!(put.is_err(), "TLS to a plain-TCP server cannot succeed");
    assert!(
        !redis_exists(&server, 0, &tier.redis_key(&k)).await,
        "nothing was written in plain text"
    );
}

#[tokio::test]
async fn disk_too_large_replacement_drops_the_older_entry() {
    let dir = tempfile::tempdir().unwrap();
    let tier = open_disk(dir.path(), 64 * 1024).await;
    let k = key("products", "grows");
    tier.put(&k, object(b"small v1")).await.unwrap();
    assert!(tier.get(&k).await.unwrap().is_some());
    // The new version does not fit: it is not stored, and v1 must not be
    // served in its place.
    tier.put(&k, object(&common::pattern_bytes(100 * 1024)))
        .await
        .unwrap();
    assert!(tier.get(&k).await.unwrap().is_none());
    assert!(!tier.entry_path(&k).exists());
    assert_eq!(tier.stats().items, 0);
}

/// The same object of one bucket name fetched from two backends.
fn on_backend(backend: u8) -> CacheKey {
    CacheKey {
        backend: BackendId([backend; 16]),
        ..key("products", "same.txt")
    }
}

/// A tier answers only for the backend an entry was fetched from, an entry
/// purge removes one backend's entry, an object purge every backend's.
async fn backends_are_kept_apart(tier: &dyn CacheTier) {
    let (one, two) = (on_backend(1), on_backend(2));
    tier.put(&one, object(b"from one")).await.unwrap();
    assert!(
        tier.get(&two).await.unwrap().is_none(),
        "another backend misses"
    );
    tier.put(&two, object(b"from two")).await.unwrap();
    assert_eq!(tier.get(&one).await.unwrap().unwrap().body, "from one");
    assert_eq!(tier.get(&two).await.unwrap().unwrap().body, "from two");

    assert_eq!(
        tier.purge(&PurgeScope::Entry(one.clone())).await.unwrap(),
        1
    );
    assert!(tier.get(&one).await.unwrap().is_none());
    assert!(
        tier.get(&two).await.unwrap().is_some(),
        "the other entry stays"
    );

    tier.put(&one, object(b"from one")).await.unwrap();
    let object_scope = PurgeScope::Object {
        bucket: "products".into(),
        key: "same.txt".into(),
    };
    assert_eq!(tier.purge(&object_scope).await.unwrap(), 2);
    assert!(tier.get(&one).await.unwrap().is_none());
    assert!(tier.get(&two).await.unwrap().is_none());
}

#[tokio::test]
async fn disk_keeps_backends_apart() {
    let dir = tempfile::tempdir().unwrap();
    backends_are_kept_apart(&open_disk(dir.path(), 1 << 30).await).await;
}

#[tokio::test]
async fn redis_keeps_backends_apart() {
    let server = RedisServer::start().await;
    let tier = RedisTier::new(&redis_config(&server, "apart:")).unwrap();
    backends_are_kept_apart(&tier).await;
}
