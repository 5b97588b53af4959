//! `upstream.max_connections_per_bucket` against the real binary: a bucket
//! whose connections are all busy (downloads in flight) answers 503
//! `UpstreamBusy` with `Retry-After: 1` after `connection_wait_ms`, without
//! reaching S3, while another bucket is still served; when the downloads
//! end, the bucket is served again.

mod common;
#[path = "common/gated.rs"]
mod gated;

use common::*;
use gated::{GATED_BODY, GatedUpstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_at_its_cap_is_busy_while_others_are_served() {
    let upstream = GatedUpstream::start().await;
    let bucket = |name: &str| {
        BucketCfg::at(
            name,
            &upstream.endpoint(),
            &format!("{name}-bkt"),
            ACCESS_KEY,
            SECRET_KEY,
        )
    };
    let mut cfg = Config::new(vec![bucket("capped"), bucket("other")]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml =
        "upstream:\n  max_connections_per_bucket: 2\n  connection_wait_ms: 100\n".to_owned();
    let proxy = Proxy::start(&cfg).await;

    // Two downloads in flight: the bucket's two connections are busy.
    let mut first = Download::start(proxy.main, "/capped/one", &[]).await;
    let mut second = Download::start(proxy.main, "/capped/two", &[]).await;
    assert_eq!((first.status, second.status), (200, 200));
    first.read_at_least(1, |_| {}).await.unwrap();
    second.read_at_least(1, |_| {}).await.unwrap();

    let busy = get(proxy.main, "/capped/three").await;
    assert_eq!(busy.status, 503, "{}", busy.describe());
    assert_eq!(busy.header("retry-after"), Some("1"));
    let v = busy.json();
    assert_eq!(v["error"]["code"], "UpstreamBusy", "{v}");
    assert_eq!(
        upstream.received("three"),
        0,
        "a busy answer never reaches S3"
    );

    // Another bucket has connections of its own.
    let mut elsewhere = Download::start(proxy.main, "/other/one", &[]).await;
    assert_eq!(elsewhere.status, 200);
    elsewhere.read_at_least(1, |_| {}).await.unwrap();

    upstream.release();
    for download in [&mut first, &mut second, &mut elsewhere] {
        let mut rest = Vec::new();
        let total = download.read_to_end(|b| rest.extend_from_slice(b)).await;
        assert_eq!(total, Ok(GATED_BODY.len() as u64));
        assert!(GATED_BODY.as_bytes().ends_with(&rest));
    }
    // The permits came back with the ends of the bodies: more requests than
    // the cap, one after another, all served.
    for i in 0..3 {
        let again = get(proxy.main, &format!("/capped/again-{i}")).await;
        assert_eq!(again.status, 200, "{}", again.describe());
        assert_eq!(again.body, GATED_BODY.as_bytes());
    }
}
