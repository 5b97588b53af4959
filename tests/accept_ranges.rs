//! `Accept-Ranges: bytes` on every object answer, against the real binary
//! and s3s-fs: from S3 (200, 206, HEAD), from the cache (200, 206, HEAD),
//! on a bucket without the cache; never on an error.

mod common;

use common::*;

const BKT: &str = "ranges-bucket";
const BODY: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_answer_offers_byte_ranges() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "a.txt", BODY);
    let cached = BucketCfg::new("cached", &s3, BKT);
    let mut direct = BucketCfg::new("direct", &s3, BKT);
    direct.extra_yaml = "    cache:\n      enabled: false\n".to_owned();
    let mut cfg = Config::new(vec![cached, direct]);
    cfg.extra_yaml = "cache:\n  enabled: true\n  memory:\n    max_item_size_mb: 1\n    \
                      max_cache_size_mb: 16\n    default_ttl_seconds: 3600\n"
        .to_owned();
    let proxy = Proxy::start(&cfg).await;

    let range = [("range", "bytes=2-5")];
    for bucket in ["cached", "direct"] {
        let target = format!("/{bucket}/a.txt");
        // First answers come from S3 (a range bypasses the cache), then
        // the cached bucket answers from its store.
        for round in 0..2 {
            let what = format!("{bucket} round {round}");
            let r = send(proxy.main, "GET", &target, &range).await;
            assert_eq!(r.status, 206, "{what}: {}", r.describe());
            assert_eq!(r.body.as_ref(), &BODY[2..6]);
            assert_eq!(
                r.header("accept-ranges"),
                Some("bytes"),
                "{what}: {}",
                r.describe()
            );
            let r = get(proxy.main, &target).await;
            assert_eq!(r.status, 200, "{what}: {}", r.describe());
            assert_eq!(
                r.header("accept-ranges"),
                Some("bytes"),
                "{what}: {}",
                r.describe()
            );
            let r = send(proxy.main, "HEAD", &target, &[]).await;
            assert_eq!(r.status, 200, "{what}: {}", r.describe());
            assert_eq!(
                r.header("accept-ranges"),
                Some("bytes"),
                "{what}: {}",
                r.describe()
            );
        }
        let r = get(proxy.main, &format!("/{bucket}/missing.txt")).await;
        assert_eq!(r.status, 404, "{}", r.describe());
        assert_eq!(r.header("accept-ranges"), None);
    }
    let r = send(proxy.main, "GET", "/cached/a.txt", &range).await;
    assert!(
        r.header("x-cache").is_some_and(|c| c.starts_with("HIT")),
        "{}",
        r.describe()
    );
}
