//! Range requests that fill the cache, end to end: the real binary, a real
//! SigV4-verifying S3 (s3s-fs, whose recorded requests show what reached S3)
//! and, to watch a fill still under way, an upstream that holds its bodies.
//!
//! The cache keeps objects up to 1 MiB whole and cuts larger ones into
//! 256 KiB slices.

mod common;
#[path = "common/gated.rs"]
mod gated;

use common::*;
use gated::{GATED_BODY, GatedUpstream};

const BKT: &str = "media-bkt";
const SLICE: usize = 256 * 1024;
/// Larger than the item limit: 13 slices, the last one short.
const BIG: usize = 3 * 1024 * 1024 + 12_345;
const SMALL: usize = 300_000;

fn cache_yaml(slices: bool) -> String {
    let slice = if slices {
        "  slice_size_mb: 256KB\n"
    } else {
        ""
    };
    format!(
        "cache:\n  enabled: true\n{slice}  memory:\n    max_item_size_mb: 1\n    max_cache_size_mb: 64\n    default_ttl_seconds: 3600\n"
    )
}

async fn setup(slices: bool) -> (S3Server, Proxy) {
    let s3 = S3Server::start(&[BKT]).await;
    let mut cfg = Config::new(vec![BucketCfg::new("media", &s3, BKT)]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = cache_yaml(slices);
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    (s3, proxy)
}

/// The GETs S3 received for `key`.
fn gets(s3: &S3Server, key: &str) -> Vec<Option<String>> {
    s3.requests_for(key)
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.header("range").map(str::to_owned))
        .collect()
}

async fn range(proxy: &Proxy, key: &str, range: &str) -> Resp {
    send(
        proxy.main,
        "GET",
        &format!("/media/{key}"),
        &[("range", range)],
    )
    .await
}

/// What `spec` (one range-spec) selects of `body`.
fn select<'a>(body: &'a [u8], spec: &str) -> &'a [u8] {
    let len = body.len();
    let (first, last) = spec.split_once('-').unwrap();
    let (first, last) = match (first, last) {
        ("", n) => (len - n.parse::<usize>().unwrap().min(len), len - 1),
        (f, "") => (f.parse().unwrap(), len - 1),
        (f, l) => (f.parse().unwrap(), l.parse::<usize>().unwrap().min(len - 1)),
    };
    &body[first..=last]
}

/// Asserts `r` is the 206 of `spec` over `body`.
fn assert_range(r: &Resp, body: &[u8], spec: &str) {
    assert_eq!(r.status, 206, "{spec}: {}", r.describe());
    assert_eq!(r.header("accept-ranges"), Some("bytes"), "{spec}");
    let want = select(body, spec);
    assert_eq!(r.body.len(), want.len(), "{spec}");
    assert!(r.body.as_ref() == want, "{spec}: bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_miss_fills_the_cache_once_and_later_ranges_hit() {
    let (s3, proxy) = setup(false).await;
    let body = pattern_bytes(SMALL);
    s3.write_object(BKT, "clip.bin", &body);
    let first = range(&proxy, "clip.bin", "bytes=1000-1999").await;
    assert_range(&first, &body, "1000-1999");
    assert_eq!(first.header("x-cache"), Some("MISS"));
    assert_eq!(
        first.header("content-range"),
        Some(format!("bytes 1000-1999/{SMALL}").as_str())
    );
    // The first answer came as soon as its bytes arrived; one reaching the
    // object's end comes once the object is stored (from the fill or the cache).
    let end = range(&proxy, "clip.bin", "bytes=-1").await;
    assert_range(&end, &body, "-1");
    for spec in [
        "0-0",
        "0-99",
        "-500",
        "299990-",
        "123456-234567",
        "-1",
        "5-",
    ] {
        let r = range(&proxy, "clip.bin", &format!("bytes={spec}")).await;
        assert_range(&r, &body, spec);
        assert_eq!(r.header("x-cache"), Some("HIT memory"), "{spec}");
    }
    let whole = get(proxy.main, "/media/clip.bin").await;
    assert_eq!(whole.header("x-cache"), Some("HIT memory"));
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert!(whole.body.as_ref() == body.as_slice());
    // One whole-object GET, without a Range: everything else came from the cache.
    assert_eq!(gets(&s3, "clip.bin"), vec![None]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn if_range_on_a_miss_is_judged_against_the_fetched_object() {
    let (s3, proxy) = setup(false).await;
    let body = pattern_bytes(SMALL);
    s3.write_object(BKT, "a.bin", &body);
    s3.write_object(BKT, "b.bin", &body);
    let etag = get(proxy.main, "/media/a.bin")
        .await
        .header("etag")
        .unwrap()
        .to_owned();
    let stale = send(
        proxy.main,
        "GET",
        "/media/b.bin",
        &[("range", "bytes=0-9"), ("if-range", "\"not-it\"")],
    )
    .await;
    assert_eq!(stale.status, 200, "{}", stale.describe());
    assert!(stale.body.as_ref() == body.as_slice());
    // b.bin has the same bytes, hence s3s-fs's same (MD5) ETag.
    s3.write_object(BKT, "c.bin", &body);
    let current = send(
        proxy.main,
        "GET",
        "/media/c.bin",
        &[("range", "bytes=0-9"), ("if-range", &etag)],
    )
    .await;
    assert_range(&current, &body, "0-9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_range_miss_is_answered_by_the_proxy_never_by_s3() {
    let (s3, proxy) = setup(false).await;
    let small = pattern_bytes(SMALL);
    s3.write_object(BKT, "small.bin", &small);
    let r = range(&proxy, "small.bin", "bytes=0-9,100000-100009").await;
    assert_eq!(r.status, 206, "{}", r.describe());
    let content_type = r.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("multipart/byteranges; boundary="));
    let text = String::from_utf8_lossy(&r.body);
    assert!(
        text.contains(&format!("Content-Range: bytes 0-9/{SMALL}")),
        "{text}"
    );
    assert!(text.contains(&format!("Content-Range: bytes 100000-100009/{SMALL}")));
    // Overlapping ranges are merged: a single range, no repeated bytes.
    let merged = range(&proxy, "small.bin", "bytes=0-99,50-149,0-").await;
    assert_range(&merged, &small, "0-");
    // More than 16 ranges: the whole object.
    let many: Vec<String> = (0..17).map(|i| format!("{0}-{0}", i * 10)).collect();
    let r = range(&proxy, "small.bin", &format!("bytes={}", many.join(","))).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.len(), SMALL);

    // Larger than the item limit, without slices: S3's whole-object 200.
    let big = pattern_bytes(BIG);
    s3.write_object(BKT, "big.bin", &big);
    let r = range(&proxy, "big.bin", "bytes=0-9,2000000-2000009").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.body.as_ref() == big.as_slice());
    // A single range of it is asked of S3 as the client asked.
    let r = range(&proxy, "big.bin", "bytes=2000000-2000009").await;
    assert_range(&r, &big, "2000000-2000009");
    // The first answer's head described the object as too large: the
    // range went straight to S3, without another whole-object request.
    assert_eq!(
        gets(&s3, "big.bin"),
        vec![None, Some("bytes=2000000-2000009".to_owned())]
    );
    let all = s3.requests();
    assert!(
        all.iter()
            .filter_map(|r| r.header("range"))
            .all(|range| !range.contains(',')),
        "S3 was asked for several ranges"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_is_answered_while_the_rest_of_the_object_still_arrives() {
    let upstream = GatedUpstream::start().await;
    let mut cfg = Config::new(vec![BucketCfg::at(
        "media",
        &upstream.endpoint(),
        BKT,
        ACCESS_KEY,
        SECRET_KEY,
    )]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = cache_yaml(false);
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    // The upstream holds the second half of the body: the first half is
    // answered anyway.
    let r = range(&proxy, "movie.bin", "bytes=0-4").await;
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.header("x-cache"), Some("MISS"));
    assert_eq!(r.body.as_ref(), &GATED_BODY.as_bytes()[..5]);
    assert_eq!(upstream.in_flight(), 1, "the fill is still under way");
    upstream.release();
    // A range reaching the object's end is answered once the object is
    // stored (from the fill, or from the cache when it was done already).
    let end = range(&proxy, "movie.bin", "bytes=5-9").await;
    assert_eq!(end.body.as_ref(), &GATED_BODY.as_bytes()[5..]);
    let r = range(&proxy, "movie.bin", "bytes=5-9").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    assert_eq!(r.body.as_ref(), &GATED_BODY.as_bytes()[5..]);
    assert_eq!(upstream.received("movie.bin"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_answer_ranges_of_a_large_object_byte_exact_then_from_the_cache() {
    let (s3, proxy) = setup(true).await;
    let body = pattern_bytes(BIG);
    s3.write_object(BKT, "film.mp4", &body);
    let boundary = SLICE;
    let specs = [
        "0-99".to_owned(),
        format!("{}-{}", boundary - 10, boundary + 9),
        format!("{}-{}", 3 * boundary, 5 * boundary + 7),
        "-1000".to_owned(),
        format!("{}-", BIG - 70_000),
        "-1".to_owned(),
        format!("{}-{}", boundary, 2 * boundary - 1),
    ];
    for spec in &specs {
        let r = range(&proxy, "film.mp4", &format!("bytes={spec}")).await;
        assert_range(&r, &body, spec);
    }
    // One aligned range per slice, each once: the first request asked for
    // the slice of its first byte (which told the object's size), never
    // for the whole object.
    let mut slices: Vec<String> = gets(&s3, "film.mp4")
        .into_iter()
        .map(|r| r.expect("every request to S3 is a slice"))
        .collect();
    for range in &slices {
        let (first, last) = range.trim_start_matches("bytes=").split_once('-').unwrap();
        let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
        assert_eq!(first % SLICE, 0, "{range}");
        assert!(last + 1 == first + SLICE || last + 1 == BIG, "{range}");
    }
    let count = slices.len();
    slices.sort();
    slices.dedup();
    assert_eq!(slices.len(), count, "a slice was fetched twice");
    for spec in &specs {
        let r = range(&proxy, "film.mp4", &format!("bytes={spec}")).await;
        assert_range(&r, &body, spec);
        assert_eq!(r.header("x-cache"), Some("HIT memory"), "{spec}");
    }
    let multi = range(&proxy, "film.mp4", "bytes=0-9,-10").await;
    assert_eq!(multi.status, 206);
    assert_eq!(gets(&s3, "film.mp4").len(), count, "all from the cache");
    let (_, samples) = scrape(&proxy).await;
    let slices_read = |result| {
        sample_value(
            &samples,
            "yatagarasu_cache_slices_total",
            &[("bucket", "media"), ("result", result)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!(slices_read("miss") as usize, count);
    assert!(slices_read("hit") >= count as f64, "{}", slices_read("hit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_changed_between_slices_aborts_the_answer_without_mixing() {
    let (s3, proxy) = setup(true).await;
    let old = pattern_bytes(BIG);
    s3.write_object(BKT, "live.mp4", &old);
    let first = range(&proxy, "live.mp4", "bytes=0-99").await;
    assert_range(&first, &old, "0-99");
    // Same length, other bytes: another ETag.
    let new: Vec<u8> = old.iter().map(|b| !b).collect();
    s3.write_object(BKT, "live.mp4", &new);
    let spec = format!("bytes=0-{}", 2 * SLICE - 1);
    let mut download = Download::start(proxy.main, "/media/live.mp4", &[("range", &spec)]).await;
    assert_eq!(download.status, 206);
    let mut received = Vec::new();
    let outcome = download
        .read_to_end(|data| received.extend_from_slice(data))
        .await;
    assert!(outcome.is_err(), "the transfer must break off: {outcome:?}");
    assert!(received.len() < 2 * SLICE);
    assert!(
        received == old[..received.len()],
        "only the old version's bytes"
    );
    // The old version's slices are gone: the next answer is all new.
    let r = range(&proxy, "live.mp4", &spec).await;
    assert_range(&r, &new, &spec["bytes=".len()..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_request_for_an_object_asks_s3_for_one_slice_only() {
    let (s3, proxy) = setup(true).await;
    let big = pattern_bytes(BIG);
    s3.write_object(BKT, "seek.mp4", &big);
    // A player's first request may be a seek: only the slice it needs.
    let r = range(&proxy, "seek.mp4", "bytes=2000000-2000099").await;
    assert_range(&r, &big, "2000000-2000099");
    let slice = 2_000_000 / SLICE;
    let asked = format!("bytes={}-{}", slice * SLICE, (slice + 1) * SLICE - 1);
    assert_eq!(gets(&s3, "seek.mp4"), vec![Some(asked.clone())]);
    let r = range(&proxy, "seek.mp4", "bytes=-100").await;
    assert_range(&r, &big, "-100");
    let last = (BIG - 1) / SLICE * SLICE;
    assert_eq!(
        gets(&s3, "seek.mp4"),
        vec![Some(asked), Some(format!("bytes={last}-{}", BIG - 1))]
    );

    // Within one slice: that answer is the whole object, filled at once.
    let tiny = pattern_bytes(1000);
    s3.write_object(BKT, "tiny.bin", &tiny);
    let r = range(&proxy, "tiny.bin", "bytes=-10").await;
    assert_range(&r, &tiny, "-10");
    assert_eq!(gets(&s3, "tiny.bin").len(), 1);
    let r = range(&proxy, "tiny.bin", "bytes=0-9").await;
    assert_eq!(r.header("x-cache"), Some("HIT memory"));

    // Between a slice and the item limit: the whole object is asked next.
    let small = pattern_bytes(SMALL);
    s3.write_object(BKT, "small.bin", &small);
    let r = range(&proxy, "small.bin", "bytes=299000-").await;
    assert_range(&r, &small, "299000-");
    let r = range(&proxy, "small.bin", "bytes=0-9").await;
    assert_range(&r, &small, "0-9");
    assert_eq!(r.header("x-cache"), Some("HIT memory"));
    assert_eq!(
        gets(&s3, "small.bin"),
        vec![Some(format!("bytes={SLICE}-{}", 2 * SLICE - 1)), None]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_range_misses_make_one_request_to_s3() {
    // Within the item limit (no slices): one whole-object request; over it
    // (slices): one slice request.
    for (slices, key, len, spec) in [
        (false, "small.bin", SMALL, "0-"),
        (true, "big.bin", BIG, "100-199"),
    ] {
        let (s3, proxy) = setup(slices).await;
        let body = pattern_bytes(len);
        s3.write_object(BKT, key, &body);
        let requests = (0..20).map(|i| {
            let spec = if i % 2 == 0 { spec } else { "0-99" };
            let proxy = &proxy;
            async move { (range(proxy, key, &format!("bytes={spec}")).await, spec) }
        });
        for (r, spec) in futures_util::future::join_all(requests).await {
            assert_range(&r, &body, spec);
        }
        assert_eq!(gets(&s3, key).len(), 1, "{key}: {:?}", gets(&s3, key));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slices_on_disk_answer_after_a_restart_without_s3() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = S3Server::start(&[BKT]).await;
    let body = pattern_bytes(BIG);
    s3.write_object(BKT, "film.mp4", &body);
    let mut cfg = Config::new(vec![BucketCfg::new("media", &s3, BKT)]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = format!(
        "{}  cache_layers: [memory, disk]\n  disk:\n    cache_dir: {}\n",
        cache_yaml(true),
        q(dir.path().to_str().unwrap())
    );
    let specs = ["0-99", "1000000-1300000", "-5000"];
    {
        let proxy = Proxy::start(&cfg).await;
        proxy.wait_ready().await;
        for spec in specs {
            assert_range(
                &range(&proxy, "film.mp4", &format!("bytes={spec}")).await,
                &body,
                spec,
            );
        }
        // The description and the slices read (0, 3, 4, 12) reach the disk
        // through the background queue.
        eventually("the disk tier holds them", DEADLINE, || async {
            let (_, samples) = scrape(&proxy).await;
            match sample_value(&samples, "yatagarasu_cache_items", &[("tier", "disk")]) {
                Some(items) if items >= 5.0 => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }
    let before = gets(&s3, "film.mp4").len();
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    for spec in specs {
        assert_range(
            &range(&proxy, "film.mp4", &format!("bytes={spec}")).await,
            &body,
            spec,
        );
    }
    assert_eq!(
        gets(&s3, "film.mp4").len(),
        before,
        "all from the disk tier"
    );
}
