//! `server.max_concurrent_requests` against the real binary: beyond the
//! limit a request gets 503 with `Retry-After: 1` at once, a download holds
//! its slot until its body is done, probes are never shed, and slots come
//! back when the downloads end.

mod common;

use common::*;

/// Counts `yatagarasu_load_shed_total` on the metrics listener.
async fn shed_total(proxy: &Proxy) -> f64 {
    let text = send(proxy.metrics, "GET", "/metrics", &[]).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("yatagarasu_load_shed_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_limit_are_shed_until_downloads_end() {
    // Every object is an endless download: each holds its slot until dropped.
    let upstream = ScriptedUpstream::start(|_| Reply::ok(Vec::new()).endless()).await;
    let bucket = BucketCfg::at(
        "shed",
        &upstream.endpoint(),
        "shed-bkt",
        ACCESS_KEY,
        SECRET_KEY,
    );
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.server_extra_yaml = "  max_concurrent_requests: 2\n".to_owned();
    let proxy = Proxy::start(&cfg).await;

    let mut first = Download::start(proxy.main, "/shed/one", &[]).await;
    let second = Download::start(proxy.main, "/shed/two", &[]).await;
    assert_eq!((first.status, second.status), (200, 200));
    // Bytes keep flowing: the slot is held while the body is sent.
    first.read_at_least(1, |_| {}).await.unwrap();

    let shed = get(proxy.main, "/shed/three").await;
    assert_eq!(shed.status, 503, "{}", shed.describe());
    assert_eq!(shed.header("retry-after"), Some("1"));
    let v = shed.json();
    assert_eq!(v["error"]["code"], "Overloaded", "{v}");
    assert_eq!(
        v["error"]["request_id"].as_str(),
        shed.header("x-request-id")
    );
    assert_eq!(
        upstream.requests_for("three").len(),
        0,
        "a shed request never reaches S3"
    );
    assert_eq!(
        get(proxy.main, "/health").await.status,
        200,
        "probes are never shed"
    );
    assert_eq!(shed_total(&proxy).await, 1.0);

    drop(first);
    drop(second);
    let again = eventually("a slot comes back", DEADLINE, || async {
        let d = Download::start(proxy.main, "/shed/four", &[]).await;
        if d.status == 200 {
            Ok(d)
        } else {
            Err(format!("status {}", d.status))
        }
    })
    .await;
    assert_eq!(again.status, 200);
}
