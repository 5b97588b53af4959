//! `buckets[i].s3.retry` against the real binary and a controllable
//! upstream: a flaky read is retried into one clean answer, a body that
//! breaks after its head is never retried (the client sees the transfer
//! abort), a hanging backend is given up on after `max_attempts`, client
//! errors are never retried, and when the backend is down for everyone the
//! retry budget keeps the extra load within `budget_percent`.

mod common;

use std::time::{Duration, Instant};

use common::faulty::{Fault, Faulty};
use common::*;

/// A proxy with one bucket `name` on `upstream`, its `s3` block extended by `s3_extra`.
async fn proxy_for(upstream: &Faulty, name: &str, s3_extra: &str, timeout: u64) -> Proxy {
    let mut bucket = BucketCfg::at(
        name,
        &upstream.endpoint(),
        "faulty-bkt",
        ACCESS_KEY,
        SECRET_KEY,
    );
    bucket.extra_yaml = s3_extra.to_owned();
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.request_timeout_seconds = timeout;
    Proxy::start(&cfg).await
}

/// The value of the series of `name` whose labels include every one of
/// `labels` (`key="value"`), or 0 when there is none.
async fn metric(proxy: &Proxy, name: &str, labels: &[&str]) -> f64 {
    let text = send(proxy.metrics, "GET", "/metrics", &[]).await.text();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const FAST: &str = "      retry: {max_attempts: 3, initial_backoff_ms: 1, max_backoff_ms: 5}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flaky_backend_is_retried_and_the_client_sees_one_clean_200() {
    let object = pattern_bytes(256 * 1024);
    let upstream = Faulty::object(object.clone()).await;
    let proxy = proxy_for(&upstream, "flaky", FAST, 30).await;

    upstream.fail_next(2, Fault::Unavailable);
    let r = get(proxy.main, "/flaky/one.bin").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.body == object, "the exact bytes");
    assert_eq!(upstream.requests(), 3, "two failures, then the answer");

    // SlowDown is retried too, and counted by reason.
    upstream.fail_next(1, Fault::slow_down());
    upstream.fail_next(1, Fault::S3Error(500, "InternalError"));
    let r = get(proxy.main, "/flaky/two.bin").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(upstream.requests_for("two.bin"), 3);

    let retries = |reason: &'static str| {
        let proxy = &proxy;
        async move {
            let label = format!("reason=\"{reason}\"");
            metric(
                proxy,
                "yatagarasu_upstream_retries_total",
                &["bucket=\"flaky\"", &label],
            )
            .await
        }
    };
    assert_eq!(retries("503").await, 2.0);
    assert_eq!(retries("slow_down").await, 1.0);
    assert_eq!(retries("500").await, 1.0);

    // Without failures, one request is one upstream request.
    let r = get(proxy.main, "/flaky/three.bin").await;
    assert_eq!(r.status, 200);
    assert_eq!(upstream.requests_for("three.bin"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_broken_after_the_head_aborts_the_transfer_and_is_not_retried() {
    let object = pattern_bytes(1024 * 1024);
    let upstream = Faulty::object(object.clone()).await;
    let proxy = proxy_for(&upstream, "broken", FAST, 30).await;

    upstream.fail_next(1, Fault::ResetAfter(100 * 1024));
    let mut download = Download::start(proxy.main, "/broken/big.bin", &[]).await;
    assert_eq!(download.status, 200);
    let mut received = Vec::new();
    let outcome = download
        .read_to_end(|data| received.extend_from_slice(data))
        .await;
    assert!(
        outcome.is_err(),
        "a clean end after {} of {} bytes would be a silently short object",
        received.len(),
        object.len()
    );
    assert!(received.len() < object.len());
    assert!(
        object.starts_with(&received),
        "what arrived is the object's start"
    );
    assert_eq!(
        upstream.requests(),
        1,
        "never retried once the head was sent"
    );
    assert_eq!(
        metric(
            &proxy,
            "yatagarasu_upstream_retries_total",
            &["bucket=\"broken\""]
        )
        .await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_backend_gets_a_504_after_max_attempts() {
    let upstream = Faulty::object("never sent").await;
    let retry = "      retry: {max_attempts: 2, initial_backoff_ms: 1, max_backoff_ms: 5}\n";
    let proxy = proxy_for(&upstream, "hang", retry, 1).await;

    upstream.fail_always(Fault::Hang);
    let started = Instant::now();
    let r = get(proxy.main, "/hang/x.bin").await;
    assert_eq!(r.status, 504, "{}", r.describe());
    assert_eq!(
        r.json()["error"]["code"],
        "GatewayTimeout",
        "{}",
        r.describe()
    );
    assert_eq!(upstream.requests(), 2, "max_attempts tries, no more");
    // Both tries waited out their 1 s timeout, and nothing more than that and the backoff.
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(2), "{took:?}");
    assert!(took < DEADLINE, "{took:?}");
    assert_eq!(
        metric(
            &proxy,
            "yatagarasu_upstream_retries_total",
            &["reason=\"timeout\""]
        )
        .await,
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_never_retried() {
    let upstream = Faulty::object("object").await;
    let proxy = proxy_for(&upstream, "fourxx", FAST, 30).await;

    upstream.fail_next(1, Fault::S3Error(404, "NoSuchKey"));
    assert_eq!(get(proxy.main, "/fourxx/a").await.status, 404);
    assert_eq!(upstream.requests(), 1);
    upstream.fail_next(1, Fault::S3Error(403, "AccessDenied"));
    assert_eq!(get(proxy.main, "/fourxx/b").await.status, 403);
    assert_eq!(upstream.requests(), 2);
    assert_eq!(
        metric(&proxy, "yatagarasu_upstream_retries_total", &[]).await,
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_bounds_retries_when_the_backend_is_down_for_everyone() {
    const REQUESTS: usize = 300;
    const PERCENT: usize = 10;
    /// The budget's fixed reserve: 10 retries a second over its 10 s window.
    const RESERVE: usize = 100;
    let upstream = Faulty::object("object").await;
    let retry = format!(
        "      retry: {{max_attempts: 3, initial_backoff_ms: 1, max_backoff_ms: 2, \
         budget_percent: {PERCENT}}}\n"
    );
    let proxy = proxy_for(&upstream, "down", &retry, 30).await;
    upstream.fail_always(Fault::Unavailable);

    let mut clients = tokio::task::JoinSet::new();
    for worker in 0..10 {
        let main = proxy.main;
        clients.spawn(async move {
            for i in 0..REQUESTS / 10 {
                let r = get(main, &format!("/down/{worker}-{i}")).await;
                assert!(r.status >= 500, "{}", r.describe());
            }
        });
    }
    while let Some(done) = clients.join_next().await {
        done.unwrap();
    }
    let upstream_requests = upstream.requests();
    let bound = REQUESTS + REQUESTS * PERCENT / 100 + RESERVE;
    assert!(
        upstream_requests <= bound,
        "{upstream_requests} upstream requests for {REQUESTS} (bound {bound}; unbounded: {})",
        REQUESTS * 3
    );
    assert!(upstream_requests > REQUESTS, "some retries were made");
    assert!(
        metric(
            &proxy,
            "yatagarasu_retry_budget_exhausted_total",
            &["bucket=\"down\""]
        )
        .await
            > 0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_read_reaches_a_real_s3_with_a_valid_signature() {
    let s3 = S3Server::start(&["real-bkt"]).await;
    s3.write_object("real-bkt", "doc.txt", b"signed and served");
    let upstream = Faulty::forward_to(s3.addr()).await;
    let mut bucket = BucketCfg::at(
        "real",
        &upstream.endpoint(),
        "real-bkt",
        &s3.access_key,
        &s3.secret_key,
    );
    bucket.extra_yaml = FAST.to_owned();
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    let proxy = Proxy::start(&cfg).await;

    upstream.fail_next(1, Fault::slow_down());
    let r = get(proxy.main, "/real/doc.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"signed and served");
    assert_eq!(upstream.requests(), 2);
}
