//! `buckets[i].s3.circuit_breaker` against the real binary and a
//! controllable upstream: consecutive failures open it, an open breaker
//! answers 503 with `Retry-After` at once without asking S3, probes after
//! `timeout_seconds` close it again, 4xx never open it, a body that breaks
//! mid-stream counts as a failure, and a reload keeps the state of an
//! unchanged backend but starts afresh for a changed one.

mod common;

use std::time::{Duration, Instant};

use common::faulty::{Fault, Faulty};
use common::*;

const OBJECT: &[u8] = b"the object behind the breaker";

fn breaker_yaml(failures: u32, successes: u32, timeout: u64) -> String {
    format!(
        "      circuit_breaker: {{failure_threshold: {failures}, success_threshold: {successes}, \
         timeout_seconds: {timeout}, half_open_max_requests: 1}}\n"
    )
}

fn config(upstream: &Faulty, access_key: &str, s3_extra: &str) -> Config {
    let mut bucket = BucketCfg::at(
        "guarded",
        &upstream.endpoint(),
        "guarded-bkt",
        access_key,
        SECRET_KEY,
    );
    bucket.extra_yaml = s3_extra.to_owned();
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg
}

/// The value of the series of `name` whose labels include every one of `labels`.
async fn metric(proxy: &Proxy, name: &str, labels: &[&str]) -> f64 {
    let text = send(proxy.metrics, "GET", "/metrics", &[]).await.text();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|want| l.contains(want)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn state(proxy: &Proxy) -> f64 {
    let labels = ["bucket=\"guarded\"", "replica=\"primary\""];
    metric(proxy, "yatagarasu_circuit_breaker_state", &labels).await
}

async fn transitions(proxy: &Proxy, to: &str) -> f64 {
    let to = format!("to=\"{to}\"");
    let labels = ["bucket=\"guarded\"", "replica=\"primary\"", to.as_str()];
    metric(
        proxy,
        "yatagarasu_circuit_breaker_transitions_total",
        &labels,
    )
    .await
}

/// Asserts `r` is the breaker's fast refusal.
fn assert_refused(r: &Resp) {
    assert_eq!(r.status, 503, "{}", r.describe());
    assert_eq!(r.json()["error"]["code"], "CircuitOpen", "{}", r.describe());
    let retry_after: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{}", r.describe());
}

/// GETs `target` until it is not refused by the breaker (a probe went
/// through), and returns that answer.
async fn first_not_refused(proxy: &Proxy, target: &str) -> Resp {
    let started = Instant::now();
    loop {
        let r = get(proxy.main, target).await;
        if r.status != 503 || r.json()["error"]["code"] != "CircuitOpen" {
            return r;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the breaker never let a probe through"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_opens_after_the_threshold_fails_fast_and_closes_after_probes() {
    let upstream = Faulty::object(OBJECT).await;
    let proxy = Proxy::start(&config(&upstream, ACCESS_KEY, &breaker_yaml(3, 2, 1))).await;
    assert_eq!(
        state(&proxy).await,
        0.0,
        "published closed when it goes live"
    );

    upstream.fail_always(Fault::Unavailable);
    for i in 0..3 {
        let r = get(proxy.main, &format!("/guarded/fail-{i}")).await;
        assert_eq!(r.status, 503, "{}", r.describe());
        assert_ne!(r.json()["error"]["code"], "CircuitOpen");
    }
    assert_eq!(upstream.requests(), 3);
    assert_eq!(state(&proxy).await, 2.0);
    for _ in 0..5 {
        assert_refused(&get(proxy.main, "/guarded/refused").await);
    }
    assert_eq!(upstream.requests(), 3, "an open breaker never asks S3");

    // Recovered: after timeout_seconds one probe goes through, and
    // success_threshold successes close the breaker.
    upstream.heal();
    let probe = first_not_refused(&proxy, "/guarded/probe").await;
    assert_eq!(probe.status, 200, "{}", probe.describe());
    assert_eq!(probe.body.as_ref(), OBJECT);
    assert_eq!(
        state(&proxy).await,
        1.0,
        "one success of two: still half-open"
    );
    let r = get(proxy.main, "/guarded/second").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(state(&proxy).await, 0.0);
    for to in ["open", "half_open", "closed"] {
        assert_eq!(transitions(&proxy, to).await, 1.0, "to {to}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_probe_opens_it_again() {
    let upstream = Faulty::object(OBJECT).await;
    let proxy = Proxy::start(&config(&upstream, ACCESS_KEY, &breaker_yaml(1, 1, 1))).await;
    upstream.fail_always(Fault::slow_down());
    assert_eq!(get(proxy.main, "/guarded/a").await.status, 503);
    let probe = first_not_refused(&proxy, "/guarded/probe").await;
    assert_eq!(
        probe.status,
        503,
        "the probe met SlowDown: {}",
        probe.describe()
    );
    assert_eq!(upstream.requests(), 2);
    assert_refused(&get(proxy.main, "/guarded/b").await);
    assert_eq!(transitions(&proxy, "open").await, 2.0);
    assert_eq!(upstream.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_never_open_it() {
    let upstream = Faulty::object(OBJECT).await;
    let proxy = Proxy::start(&config(&upstream, ACCESS_KEY, &breaker_yaml(2, 1, 3600))).await;
    upstream.fail_next(3, Fault::S3Error(404, "NoSuchKey"));
    upstream.fail_next(3, Fault::S3Error(403, "AccessDenied"));
    for _ in 0..6 {
        assert!(matches!(
            get(proxy.main, "/guarded/x").await.status,
            403 | 404
        ));
    }
    assert_eq!(state(&proxy).await, 0.0);
    assert_eq!(get(proxy.main, "/guarded/x").await.status, 200);
    assert_eq!(upstream.requests(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_broken_mid_stream_counts_as_a_failure() {
    let upstream = Faulty::object(pattern_bytes(512 * 1024)).await;
    let proxy = Proxy::start(&config(&upstream, ACCESS_KEY, &breaker_yaml(2, 1, 3600))).await;
    upstream.fail_next(2, Fault::ResetAfter(1000));
    for _ in 0..2 {
        let mut download = Download::start(proxy.main, "/guarded/big", &[]).await;
        assert_eq!(download.status, 200, "the head arrived before the break");
        assert!(download.read_to_end(|_| {}).await.is_err());
    }
    assert_refused(&get(proxy.main, "/guarded/big").await);
    assert_eq!(upstream.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_an_open_breaker_unless_the_backend_changed() {
    let upstream = Faulty::object(OBJECT).await;
    let breaker = breaker_yaml(1, 1, 3600);
    let mut cfg = config(&upstream, ACCESS_KEY, &breaker);
    let proxy = Proxy::start(&cfg).await;
    upstream.fail_next(1, Fault::Unavailable);
    assert_eq!(get(proxy.main, "/guarded/a").await.status, 503);
    assert_refused(&get(proxy.main, "/guarded/a").await);

    // Same backend and settings, another change (a new bucket): still open.
    let mut other = BucketCfg::at(
        "other",
        &upstream.endpoint(),
        "other-bkt",
        ACCESS_KEY,
        SECRET_KEY,
    );
    other.path_prefix = "/other".into();
    cfg.buckets.push(other);
    reload(&proxy, &cfg).await;
    assert_refused(&get(proxy.main, "/guarded/a").await);
    assert_eq!(state(&proxy).await, 2.0);
    assert_eq!(upstream.requests(), 1);

    // A rejected reload changes nothing either.
    let from = proxy.log_len();
    proxy.write_config(
        &cfg.yaml()
            .replace("failure_threshold: 1", "failure_threshold: 0"),
    );
    proxy.signal("HUP");
    proxy
        .wait_for_message(from, "configuration reload failed")
        .await;
    assert_refused(&get(proxy.main, "/guarded/a").await);

    // New credentials: another backend identity, a fresh (closed) breaker.
    cfg.buckets[0].access_key = "AKIAOTHERIDENTITY001".into();
    reload(&proxy, &cfg).await;
    let r = get(proxy.main, "/guarded/a").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(state(&proxy).await, 0.0);
    assert_eq!(upstream.requests(), 2);
}

async fn reload(proxy: &Proxy, cfg: &Config) {
    proxy.write_config(&cfg.yaml());
    let from = proxy.log_len();
    proxy.signal("HUP");
    proxy.wait_for_message(from, "configuration reloaded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connections_open_it_and_a_probe_closes_it_once_the_target_is_back() {
    let upstream = Faulty::object(OBJECT).await;
    let proxy = Proxy::start(&config(&upstream, ACCESS_KEY, &breaker_yaml(2, 1, 1))).await;
    assert_eq!(get(proxy.main, "/guarded/warm").await.status, 200);

    upstream.refuse_connections().await;
    for _ in 0..2 {
        let r = get(proxy.main, "/guarded/down").await;
        assert_eq!(r.status, 502, "{}", r.describe());
    }
    assert_refused(&get(proxy.main, "/guarded/down").await);
    assert_eq!(state(&proxy).await, 2.0);

    upstream.accept_connections();
    let probe = first_not_refused(&proxy, "/guarded/back").await;
    assert_eq!(probe.status, 200, "{}", probe.describe());
    assert_eq!(state(&proxy).await, 0.0);
    assert_eq!(upstream.requests(), 2, "the warm-up and the probe");
}
