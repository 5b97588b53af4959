//! The response cache end to end: the real binary, a real SigV4-verifying S3
//! (s3s-fs, whose recorded requests count upstream GETs) and, where S3 must
//! answer 304 or fail on cue, a scripted upstream.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::*;

const BKT: &str = "products-bkt";

/// The `cache:` section with a memory tier; `extra` adds top-level cache keys.
fn cache_yaml(extra: &str) -> String {
    format!(
        "cache:\n  enabled: true\n  memory:\n    max_item_size_mb: 1\n    max_cache_size_mb: 16\n    default_ttl_seconds: 3600\n{extra}"
    )
}

/// A proxy caching bucket `products` of a real S3 server; probes only at start.
async fn setup(cache_extra: &str, bucket_extra: &str) -> (S3Server, Proxy, Config) {
    let s3 = S3Server::start(&[BKT]).await;
    let mut bucket = BucketCfg::new("products", &s3, BKT);
    bucket.extra_yaml = bucket_extra.to_owned();
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = cache_yaml(cache_extra);
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    (s3, proxy, cfg)
}

/// GETs S3 received for paths containing `needle`.
fn s3_gets(s3: &S3Server, needle: &str) -> usize {
    s3.requests_for(needle)
        .iter()
        .filter(|r| r.method == "GET")
        .count()
}

fn scripted_gets(upstream: &ScriptedUpstream, needle: &str) -> usize {
    upstream
        .requests_for(needle)
        .iter()
        .filter(|r| r.method == "GET")
        .count()
}

async fn admin(proxy: &Proxy, method: &str, path: &str) -> Resp {
    send_with_body(
        proxy.admin,
        method,
        path,
        &[("x-yatagarasu-admin", "1")],
        Bytes::new(),
    )
    .await
}

/// A proxy on a scripted upstream for bucket `products`.
async fn scripted_setup(
    upstream: &ScriptedUpstream,
    cache_extra: &str,
    bucket_extra: &str,
    request_timeout_seconds: u64,
) -> Proxy {
    let mut bucket = BucketCfg::at(
        "products",
        &upstream.endpoint(),
        BKT,
        ACCESS_KEY,
        SECRET_KEY,
    );
    bucket.extra_yaml = bucket_extra.to_owned();
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.request_timeout_seconds = request_timeout_seconds;
    cfg.extra_yaml = cache_yaml(cache_extra);
    Proxy::start(&cfg).await
}

/// The response headers except those that differ by design (`X-Cache`,
/// `Age` on a hit, the request id, `Date`), sorted.
fn comparable_headers(r: &Resp) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = r
        .headers
        .iter()
        .filter(|(name, _)| !["x-cache", "age", "x-request-id", "date"].contains(&name.as_str()))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("?").to_owned()))
        .collect();
    headers.sort();
    headers
}

/// A hit answers with exactly the headers of the miss that filled it:
/// whatever S3 sends or leaves out (here `Accept-Ranges`), and whatever it
/// sends that never reaches a client (its request id, `Server`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hit_and_the_miss_before_it_carry_the_same_headers() {
    let upstream = ScriptedUpstream::start(|_| {
        Reply::ok("same headers")
            .header("ETag", "\"h1\"")
            .header("Content-Type", "text/plain")
            .header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
            .header("Cache-Control", "max-age=600")
            .header("x-amz-meta-owner", "team-a")
            .header("x-amz-version-id", "v1")
            .header("x-amz-id-2", "internal")
            .header("Server", "AmazonS3")
    })
    .await;
    let proxy = scripted_setup(&upstream, "", "", 30).await;
    let miss = get(proxy.main, "/products/same.txt").await;
    assert_eq!(miss.header("x-cache"), Some("MISS"), "{}", miss.describe());
    let hit = get(proxy.main, "/products/same.txt").await;
    assert_eq!(
        hit.header("x-cache"),
        Some("HIT memory"),
        "{}",
        hit.describe()
    );
    assert_eq!(comparable_headers(&hit), comparable_headers(&miss));
    assert_eq!(miss.header("accept-ranges"), Some("bytes"));
    assert_eq!(miss.header("server"), None);
    assert_eq!(scripted_gets(&upstream, "same.txt"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn miss_then_hit_replays_bytes_and_headers_exactly() {
    let (s3, proxy, _) = setup("", "").await;
    let body: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    s3.put_object(
        BKT,
        "img/logo.png",
        &body,
        Some("image/png"),
        &[
            ("cache-control", "public, max-age=600"),
            ("content-disposition", "inline; filename=\"logo.png\""),
            ("x-amz-meta-owner", "team-a"),
        ],
    )
    .await;

    let miss = get(proxy.main, "/products/img/logo.png").await;
    assert_eq!(miss.status, 200, "{}", miss.describe());
    assert_eq!(miss.header("x-cache"), Some("MISS"));
    assert_eq!(miss.body.as_ref(), body.as_slice());

    let hit = get(proxy.main, "/products/img/logo.png").await;
    assert_eq!(hit.status, 200, "{}", hit.describe());
    assert_eq!(hit.header("x-cache"), Some("HIT memory"));
    assert_eq!(hit.body.as_ref(), body.as_slice());
    for name in [
        "content-type",
        "content-length",
        "etag",
        "last-modified",
        "cache-control",
        "content-disposition",
        "x-amz-meta-owner",
    ] {
        assert!(
            miss.header(name).is_some(),
            "S3 sent no {name}: {}",
            miss.describe()
        );
        assert_eq!(
            hit.header(name),
            miss.header(name),
            "{name} replayed exactly"
        );
    }
    assert_eq!(s3_gets(&s3, "logo.png"), 1, "the hit never reached S3");

    let head = send(proxy.main, "HEAD", "/products/img/logo.png", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-cache"), Some("HIT memory"));
    assert_eq!(head.header("content-length"), Some("50000"));
    assert!(head.body.is_empty());
    assert_eq!(
        s3.requests_for("logo.png").len(),
        2,
        "PUT + one GET: HEAD answered from cache"
    );

    let (_, samples) = scrape(&proxy).await;
    let hits = sample_value(
        &samples,
        "yatagarasu_cache_requests_total",
        &[("bucket", "products"), ("result", "hit")],
    );
    assert_eq!(hits, Some(2.0));
    assert_eq!(
        sample_value(
            &samples,
            "yatagarasu_cache_hits_total",
            &[("tier", "memory")]
        ),
        Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opted_out_bucket_and_uncacheable_requests_bypass() {
    let (s3, proxy, _) = setup("", "    cache:\n      enabled: false\n").await;
    s3.write_object(BKT, "a.txt", b"aaa");
    for _ in 0..2 {
        let r = get(proxy.main, "/products/a.txt").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-cache"), Some("BYPASS"));
    }
    assert_eq!(s3_gets(&s3, "a.txt"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_no_store_responses_are_not_cached() {
    let (s3, proxy, _) = setup("", "").await;
    s3.put_object(
        BKT,
        "p.txt",
        b"private",
        None,
        &[("cache-control", "private")],
    )
    .await;
    s3.put_object(
        BKT,
        "n.txt",
        b"nostore",
        None,
        &[("cache-control", "no-store")],
    )
    .await;
    for key in ["p.txt", "n.txt"] {
        for _ in 0..2 {
            let r = get(proxy.main, &format!("/products/{key}")).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-cache"), Some("MISS"), "{key}");
        }
        assert_eq!(s3_gets(&s3, key), 2, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versions_are_cached_apart_and_query_overrides_bypass() {
    let (s3, proxy, _) = setup("", "").await;
    s3.write_object(BKT, "v.txt", b"vvv");
    let r = get(proxy.main, "/products/v.txt").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let r = get(
        proxy.main,
        "/products/v.txt?response-content-type=text/plain",
    )
    .await;
    assert_eq!(r.header("x-cache"), Some("BYPASS"));
    let r = get(proxy.main, "/products/v.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_larger_than_the_limit_streams_through_uncached() {
    let (s3, proxy, _) = setup("", "    cache:\n      max_item_size_mb: 4KB\n").await;
    let big = pattern_bytes(4097);
    let small = pattern_bytes(4096);
    s3.write_object(BKT, "big.bin", &big);
    s3.write_object(BKT, "small.bin", &small);
    for _ in 0..2 {
        let r = get(proxy.main, "/products/big.bin").await;
        assert_eq!(r.header("x-cache"), Some("MISS"));
        assert_eq!(r.body.as_ref(), big.as_slice());
    }
    assert_eq!(s3_gets(&s3, "big.bin"), 2);
    get(proxy.main, "/products/small.bin").await;
    let r = get(proxy.main, "/products/small.bin").await;
    assert_eq!(
        r.header("x-cache"),
        Some("HIT memory"),
        "an item exactly at the limit is cached"
    );
    assert_eq!(r.body.as_ref(), small.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_object_is_served_old_until_its_ttl_then_new() {
    let (s3, proxy, _) = setup("", "    cache:\n      ttl_seconds: 1\n").await;
    s3.write_object(BKT, "t.txt", b"old bytes");
    let r = get(proxy.main, "/products/t.txt").await;
    assert_eq!(r.body.as_ref(), b"old bytes");
    s3.write_object(BKT, "t.txt", b"new bytes!");
    let r = get(proxy.main, "/products/t.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    assert_eq!(
        r.body.as_ref(),
        b"old bytes",
        "within the TTL the cached bytes are served"
    );
    // Past the TTL the entry is revalidated; s3s-fs ignores If-None-Match and
    // sends the new object, which replaces the entry.
    let fresh = eventually("new bytes after the TTL", DEADLINE, || async {
        let r = get(proxy.main, "/products/t.txt").await;
        match r.header("x-cache") {
            Some("HIT memory") if r.body.as_ref() == b"old bytes" => Err("still old".to_owned()),
            _ => Ok(r),
        }
    })
    .await;
    assert_eq!(fresh.header("x-cache"), Some("MISS"));
    assert_eq!(fresh.body.as_ref(), b"new bytes!");
    let revalidation = s3.requests_for("t.txt").pop().unwrap();
    assert!(
        revalidation.header("if-none-match").is_some(),
        "the stale entry was revalidated with its ETag"
    );
    let r = get(proxy.main, "/products/t.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    assert_eq!(r.body.as_ref(), b"new bytes!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_and_stats_api() {
    let s3 = S3Server::start(&[BKT, "docs-bkt"]).await;
    let mut cfg = Config::new(vec![
        BucketCfg::new("products", &s3, BKT),
        BucketCfg::new("docs", &s3, "docs-bkt"),
    ]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = cache_yaml("");
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    for key in ["a.txt", "b/c d.txt"] {
        s3.write_object(BKT, key, key.as_bytes());
    }
    s3.write_object("docs-bkt", "readme.md", b"readme");
    let warm = |path: &'static str| {
        let addr = proxy.main;
        async move {
            let r = get(addr, path).await;
            assert_eq!(r.status, 200, "{}", r.describe());
            r.header("x-cache").map(str::to_owned)
        }
    };
    for path in [
        "/products/a.txt",
        "/products/b/c%20d.txt",
        "/docs/readme.md",
    ] {
        assert_eq!(warm(path).await.as_deref(), Some("MISS"));
        assert_eq!(warm(path).await.as_deref(), Some("HIT memory"));
    }

    let stats = admin(&proxy, "GET", "/admin/cache/stats").await;
    assert_eq!(stats.status, 200, "{}", stats.describe());
    let v = stats.json();
    assert_eq!(v["enabled"], true);
    assert_eq!(v["tiers"]["memory"]["items"], 3);
    assert_eq!(v["tiers"]["memory"]["hits"], 3);
    assert_eq!(v["buckets"]["products"]["hits"], 2);
    assert_eq!(v["buckets"]["products"]["misses"], 2);
    assert_eq!(v["buckets"]["products"]["hit_rate"], 0.5);
    assert_eq!(v["buckets"]["products"]["memory"]["items"], 2);
    assert_eq!(v["buckets"]["docs"]["memory"]["bytes"], 6);
    let one = admin(&proxy, "GET", "/admin/cache/stats/docs").await.json();
    assert_eq!(one["name"], "docs");
    assert_eq!(one["hits"], 1);

    // One object (a key with a slash and an encoded space).
    let r = admin(&proxy, "POST", "/admin/cache/purge/products/b/c%20d.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["removed"]["memory"], 1);
    assert_eq!(warm("/products/b/c%20d.txt").await.as_deref(), Some("MISS"));
    assert_eq!(warm("/products/a.txt").await.as_deref(), Some("HIT memory"));
    // One bucket.
    let r = admin(&proxy, "POST", "/admin/cache/purge/products").await;
    assert_eq!(r.json()["removed"]["memory"], 2);
    assert_eq!(warm("/products/a.txt").await.as_deref(), Some("MISS"));
    assert_eq!(warm("/docs/readme.md").await.as_deref(), Some("HIT memory"));
    // Everything.
    let r = admin(&proxy, "POST", "/admin/cache/purge").await;
    assert_eq!(
        r.json()["removed"]["memory"],
        2,
        "a.txt (cached again) and readme.md"
    );
    assert_eq!(warm("/docs/readme.md").await.as_deref(), Some("MISS"));
    assert_eq!(s3_gets(&s3, "readme.md"), 2);

    // Errors.
    let r = admin(&proxy, "POST", "/admin/cache/purge/nope").await;
    let err = assert_error(&r, 404, Some("NoSuchBucket"));
    assert!(err["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_error(
        &admin(&proxy, "GET", "/admin/cache/stats/nope").await,
        404,
        Some("NoSuchBucket"),
    );
    let r = admin(&proxy, "GET", "/admin/cache/purge").await;
    assert_error(&r, 405, Some("MethodNotAllowed"));
    assert_eq!(r.header("allow"), Some("POST"));
    assert_error(
        &admin(&proxy, "POST", "/admin/cache/stats").await,
        405,
        None,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_cold_requests_make_one_upstream_get() {
    let body = pattern_bytes(200_000);
    let reply_body = body.clone();
    let upstream = ScriptedUpstream::start(move |_| {
        Reply::ok(reply_body.clone())
            .header("ETag", "\"e1\"")
            .header("Content-Type", "application/octet-stream")
            // Long enough for every request to arrive while the first is in flight.
            .delayed(Duration::from_millis(500))
    })
    .await;
    let proxy = scripted_setup(&upstream, "", "", 30).await;
    let requests = (0..50).map(|_| {
        let addr = proxy.main;
        tokio::spawn(async move { get(addr, "/products/hot.bin").await })
    });
    let responses = futures_util::future::join_all(requests).await;
    for r in responses {
        let r = r.unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(
            r.body.as_ref() == body.as_slice(),
            "every client got the exact bytes"
        );
    }
    assert_eq!(
        scripted_gets(&upstream, "hot.bin"),
        1,
        "exactly one upstream GET"
    );
    let (_, samples) = scrape(&proxy).await;
    let coalesced = sample_value(&samples, "yatagarasu_cache_coalesced_total", &[]).unwrap_or(0.0);
    assert!(
        coalesced >= 1.0,
        "coalesced requests are counted: {coalesced}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revalidation_304_refreshes_without_downloading_again() {
    let upstream = ScriptedUpstream::start(|request| {
        if request.header("if-none-match") == Some("\"v1\"") {
            Reply::new(304).header("ETag", "\"v1\"")
        } else {
            Reply::ok("version one")
                .header("ETag", "\"v1\"")
                .header("Content-Type", "text/plain")
        }
    })
    .await;
    let proxy = scripted_setup(&upstream, "", "    cache:\n      ttl_seconds: 1\n", 30).await;
    let r = get(proxy.main, "/products/r.txt").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let revalidated = eventually("a revalidation", DEADLINE, || async {
        let r = get(proxy.main, "/products/r.txt").await;
        let revalidations = upstream
            .requests_for("r.txt")
            .iter()
            .filter(|r| r.header("if-none-match").is_some())
            .count();
        if revalidations > 0 {
            Ok(r)
        } else {
            Err("not yet stale".into())
        }
    })
    .await;
    assert_eq!(revalidated.status, 200);
    assert_eq!(revalidated.header("x-cache"), Some("HIT memory"));
    assert_eq!(revalidated.body.as_ref(), b"version one");
    assert_eq!(revalidated.header("content-type"), Some("text/plain"));
    let seen = upstream.requests_for("r.txt");
    assert_eq!(seen.len(), 2, "one download and one conditional check");
    // Fresh again: the next request does not reach S3.
    let r = get(proxy.main, "/products/r.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    assert_eq!(upstream.requests_for("r.txt").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_within_the_window_then_an_error_after_it() {
    let failing = Arc::new(AtomicUsize::new(0));
    let state = failing.clone();
    let upstream = ScriptedUpstream::start(move |_| {
        if state.load(Ordering::SeqCst) == 1 {
            Reply::s3_error(503, "SlowDown", BKT)
        } else {
            Reply::ok("cached body").header("ETag", "\"s1\"")
        }
    })
    .await;
    let proxy = scripted_setup(
        &upstream,
        "  stale_if_error_seconds: 2\n",
        "    cache:\n      ttl_seconds: 1\n",
        30,
    )
    .await;
    assert_eq!(
        get(proxy.main, "/products/s.txt").await.header("x-cache"),
        Some("MISS")
    );
    failing.store(1, Ordering::SeqCst);
    let stale = eventually("a stale answer", DEADLINE, || async {
        let r = get(proxy.main, "/products/s.txt").await;
        if r.header("x-cache") == Some("STALE") {
            Ok(r)
        } else {
            Err(r.describe())
        }
    })
    .await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body.as_ref(), b"cached body");
    assert_eq!(stale.header("warning"), Some("110 - \"Response is Stale\""));
    // Past TTL + window: S3's error reaches the client.
    let error = eventually("the error after the window", DEADLINE, || async {
        let r = get(proxy.main, "/products/s.txt").await;
        if r.status == 200 {
            Err(r.describe())
        } else {
            Ok(r)
        }
    })
    .await;
    assert_eq!(error.status, 503, "{}", error.describe());
    let (_, samples) = scrape(&proxy).await;
    assert!(
        sample_value(
            &samples,
            "yatagarasu_cache_requests_total",
            &[("bucket", "products"), ("result", "stale")]
        )
        .is_some_and(|v| v >= 1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_if_error_when_s3_is_down() {
    let (mut s3, proxy, _) = setup(
        "  stale_if_error_seconds: 60\n",
        "    cache:\n      ttl_seconds: 1\n",
    )
    .await;
    s3.write_object(BKT, "down.txt", b"still here");
    assert_eq!(
        get(proxy.main, "/products/down.txt")
            .await
            .header("x-cache"),
        Some("MISS")
    );
    s3.stop().await;
    let stale = eventually("a stale answer", DEADLINE, || async {
        let r = get(proxy.main, "/products/down.txt").await;
        if r.header("x-cache") == Some("STALE") {
            Ok(r)
        } else {
            Err(r.describe())
        }
    })
    .await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.body.as_ref(), b"still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_upstream_transfer_leaves_nothing_cached() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let upstream = ScriptedUpstream::start(move |request| {
        if request.method == "GET" && seen.fetch_add(1, Ordering::SeqCst) == 0 {
            // Announces 20 bytes, sends 10, then stalls: the proxy gives up.
            Reply::ok("0123456789").header("Content-Length", "20")
        } else {
            Reply::ok("01234567890123456789")
        }
    })
    .await;
    let proxy = scripted_setup(&upstream, "", "", 1).await;
    let first = try_send(
        proxy.main,
        "GET",
        "/products/cut.bin",
        &[],
        Bytes::new(),
        DEADLINE,
    )
    .await;
    assert!(
        first.is_err(),
        "the client sees the transfer fail: {first:?}"
    );
    let second = get(proxy.main, "/products/cut.bin").await;
    assert_eq!(
        second.header("x-cache"),
        Some("MISS"),
        "nothing partial was stored"
    );
    assert_eq!(second.body.as_ref(), b"01234567890123456789");
    let third = get(proxy.main, "/products/cut.bin").await;
    assert_eq!(third.header("x-cache"), Some("HIT memory"));
    assert_eq!(third.body.as_ref(), b"01234567890123456789");
    assert_eq!(scripted_gets(&upstream, "cut.bin"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_disconnect_mid_fill_stores_nothing() {
    let chunks: Vec<Vec<u8>> = (0..5).map(|i| vec![b'a' + i; 1000]).collect();
    let full_body: Vec<u8> = chunks.concat();
    let upstream = ScriptedUpstream::start(move |_| {
        Reply::ok(Vec::new()).paced(chunks.clone(), Duration::from_millis(200))
    })
    .await;
    let proxy = scripted_setup(&upstream, "", "", 30).await;
    let mut download = Download::start(proxy.main, "/products/slow.bin", &[]).await;
    assert_eq!(download.header("x-cache"), Some("MISS"));
    download.read_at_least(1, |_| {}).await.unwrap();
    drop(download);
    // The proxy drops the upstream transfer when the client goes away; a
    // new request must go upstream again and get the whole object.
    let r = get(proxy.main, "/products/slow.bin").await;
    assert_eq!(
        r.header("x-cache"),
        Some("MISS"),
        "nothing partial was stored"
    );
    assert_eq!(r.body.as_ref(), full_body.as_slice());
    let r = get(proxy.main, "/products/slow.bin").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    assert_eq!(r.body.as_ref(), full_body.as_slice());
    assert_eq!(scripted_gets(&upstream, "slow.bin"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_entries_and_purges_a_repointed_bucket() {
    let (s3, proxy, mut cfg) = setup("", "").await;
    s3.create_bucket("other-bkt");
    s3.write_object(BKT, "k.txt", b"from products-bkt");
    s3.write_object("other-bkt", "k.txt", b"from other-bkt");
    get(proxy.main, "/products/k.txt").await;

    // Same configuration: the entry survives.
    let r = admin(&proxy, "POST", "/admin/reload").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = get(proxy.main, "/products/k.txt").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));

    // The bucket now points at another S3 bucket: its entries are purged.
    cfg.buckets[0].s3_bucket = "other-bkt".into();
    proxy.write_config(&cfg.yaml());
    let r = admin(&proxy, "POST", "/admin/reload").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = get(proxy.main, "/products/k.txt").await;
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_eq!(r.body.as_ref(), b"from other-bkt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_and_range_requests_are_answered_from_the_cache() {
    let (s3, proxy, _) = setup("", "").await;
    let body: Vec<u8> = (0..100u8).collect();
    s3.put_object(BKT, "r.bin", &body, Some("application/octet-stream"), &[])
        .await;
    let miss = get(proxy.main, "/products/r.bin").await;
    assert_eq!(miss.header("x-cache"), Some("MISS"));
    let etag = miss.header("etag").expect("etag").to_owned();
    let last_modified = miss
        .header("last-modified")
        .expect("last-modified")
        .to_owned();

    let not_modified = send(
        proxy.main,
        "GET",
        "/products/r.bin",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(not_modified.status, 304, "{}", not_modified.describe());
    assert_eq!(not_modified.header("x-cache"), Some("HIT memory"));
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert!(not_modified.body.is_empty());
    let since = send(
        proxy.main,
        "GET",
        "/products/r.bin",
        &[("if-modified-since", &last_modified)],
    )
    .await;
    assert_eq!(since.status, 304, "{}", since.describe());

    let failed = send(
        proxy.main,
        "GET",
        "/products/r.bin",
        &[("if-match", "\"other\"")],
    )
    .await;
    assert_error(&failed, 412, Some("PreconditionFailed"));

    let range = send(
        proxy.main,
        "GET",
        "/products/r.bin",
        &[("range", "bytes=10-19")],
    )
    .await;
    assert_eq!(range.status, 206, "{}", range.describe());
    assert_eq!(range.header("x-cache"), Some("HIT memory"));
    assert_eq!(range.header("content-range"), Some("bytes 10-19/100"));
    assert_eq!(range.body.as_ref(), &body[10..20]);
    assert!(range.header("age").is_some(), "{}", range.describe());

    let suffix = send(
        proxy.main,
        "GET",
        "/products/r.bin",
        &[("range", "bytes=-5")],
    )
    .await;
    assert_eq!(suffix.status, 206);
    assert_eq!(suffix.body.as_ref(), &body[95..]);

    let multi = send(
        proxy.main,
        "GET",
        "/products/r.bin",
        &[("range", "bytes=0-1,98-")],
    )
    .await;
    assert_eq!(multi.status, 206, "{}", multi.describe());
    let content_type = multi.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("multipart/byteranges; boundary="),
        "{content_type}"
    );
    let text = String::from_utf8_lossy(&multi.body);
    assert!(text.contains("Content-Range: bytes 0-1/100"), "{text}");
    assert!(text.contains("Content-Range: bytes 98-99/100"), "{text}");

    let unsatisfiable = send(
        proxy.main,
        "GET",
        "/products/r.bin",
        &[("range", "bytes=500-")],
    )
    .await;
    assert_eq!(unsatisfiable.status, 416, "{}", unsatisfiable.describe());
    assert_eq!(unsatisfiable.header("content-range"), Some("bytes */100"));

    let stale_validator = send(
        proxy.main,
        "GET",
        "/products/r.bin",
        &[("range", "bytes=0-9"), ("if-range", "\"not-the-etag\"")],
    )
    .await;
    assert_eq!(
        stale_validator.status, 200,
        "If-Range mismatch: the whole object"
    );
    assert_eq!(stale_validator.body.as_ref(), body.as_slice());

    assert_eq!(
        s3_gets(&s3, "r.bin"),
        1,
        "every answer above came from the cache"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_buckets_cached_object_still_needs_a_token() {
    use common::jwks::{SECRET, claims, sign};
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "secret.txt", b"private bytes");
    let mut bucket = BucketCfg::new("products", &s3, BKT);
    bucket.extra_yaml = format!(
        "    auth:\n      enabled: true\n      jwt:\n        algorithm: HS256\n        secret: {}\n",
        q(SECRET)
    );
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = cache_yaml("");
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    let token = sign(
        jsonwebtoken::Algorithm::HS256,
        "",
        None,
        &claims(serde_json::json!({})),
    );
    let bearer = format!("Bearer {token}");
    let with_token = [("authorization", bearer.as_str())];

    let r = send(proxy.main, "GET", "/products/secret.txt", &with_token).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("x-cache"), Some("MISS"));
    let r = send(proxy.main, "GET", "/products/secret.txt", &with_token).await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));

    let r = get(proxy.main, "/products/secret.txt").await;
    assert_error(&r, 401, None);
    assert!(!r.text().contains("private bytes"));
    assert!(r.header("x-cache").is_none(), "the cache was never reached");
    let r = send(proxy.main, "HEAD", "/products/secret.txt", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(s3_gets(&s3, "secret.txt"), 1);
}
