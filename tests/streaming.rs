//! A large object is streamed, not buffered.

mod common;

use std::time::{Duration, Instant};

use common::*;

const BKT: &str = "stream-bkt";
const SIZE: u64 = 256 << 20;
const MAX_GROWTH_KIB: u64 = 64 << 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_object_streams_with_bounded_memory() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_pattern_object(BKT, "big/object.bin", SIZE).await;
    s3.write_object(BKT, "small.bin", &pattern_bytes(64 << 10));
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new("big", &s3, BKT)])).await;

    // Warm up the request path so one-time allocations are not counted.
    for _ in 0..3 {
        let r = get(proxy.main, "/big/small.bin").await;
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    // Reset the peak RSS (VmHWM) so that it measures this download only.
    let reset = proxy.reset_peak_rss();
    let rss_before = proxy.proc_status_kib("VmRSS");
    let hwm_before = proxy.proc_status_kib("VmHWM");

    let start = Instant::now();
    let mut dl = Download::start(proxy.main, "/big/big/object.bin", &[]).await;
    assert_eq!(dl.status, 200, "headers: {:?}", dl.headers);
    assert_eq!(dl.header("content-length"), Some(SIZE.to_string().as_str()));
    let mut checker = PatternChecker::default();

    // A slow client first: stop reading for a moment. A proxy that reads the
    // upstream ahead of the client without bound would grow here.
    dl.read_at_least(8 << 20, |d| checker.feed(d))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_paused = proxy.proc_status_kib("VmRSS");

    let total = dl.read_to_end(|d| checker.feed(d)).await.unwrap();
    let took = start.elapsed();
    assert_eq!(total, SIZE, "received {total} of {SIZE} bytes");
    assert_eq!(checker.pos, SIZE);
    assert_eq!(
        checker.first_mismatch, None,
        "body differs from the object at this offset"
    );

    let hwm_after = proxy.proc_status_kib("VmHWM");
    let rss_after = proxy.proc_status_kib("VmRSS");
    // Conservative: if the reset failed, HWM may include an earlier peak.
    let growth = hwm_after.saturating_sub(rss_before);
    eprintln!(
        "streamed {} MiB in {took:?}; proxy RSS before {rss_before} KiB (HWM {hwm_before} KiB), \
         peak reset {reset}, while the client paused {rss_paused} KiB, after {rss_after} KiB, HWM after {hwm_after} KiB: \
         peak growth {growth} KiB ({:.1} MiB)",
        SIZE >> 20,
        growth as f64 / 1024.0
    );
    assert!(
        growth < MAX_GROWTH_KIB,
        "proxy peak RSS grew by {growth} KiB while streaming a {} MiB object (limit {MAX_GROWTH_KIB} KiB)",
        SIZE >> 20
    );

    // The access log has the whole body.
    let ev = proxy
        .wait_for_log(0, "access log of the big download", DEADLINE, |v| {
            log_field(v, "target").and_then(|t| t.as_str()) == Some("access")
                && log_field(v, "path").and_then(|p| p.as_str()) == Some("/big/big/object.bin")
        })
        .await
        .1;
    assert_eq!(
        log_field(&ev, "bytes").and_then(|b| b.as_u64()),
        Some(SIZE),
        "{ev}"
    );
    assert_eq!(
        log_field(&ev, "completed").and_then(|b| b.as_bool()),
        Some(true),
        "{ev}"
    );
}
