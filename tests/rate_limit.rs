//! Rate limits against the real binary and a real S3 server: the global,
//! per-address, per-bucket and per-user limits refuse with 429 and the
//! `Retry-After` / `RateLimit-*` fields, send nothing upstream for what they
//! refuse, count refusals by scope, and follow reloads.
//!
//! No assertion depends on timing: every limit runs at 1 request/s with a
//! known burst, a client sends until it is refused, and the bounds checked
//! (at least the burst; at most the burst plus one per elapsed second) hold
//! however slow the machine is.

mod common;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::jwks::*;
use common::*;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use jsonwebtoken::Algorithm;
use serde_json::json;
use tokio::net::TcpSocket;

const BKT: &str = "rate-bkt";
const KEY: &str = "limited-object.txt";
const BODY: &[u8] = b"rate limited bytes\n";

async fn s3_with_object() -> S3Server {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, KEY, BODY);
    s3
}

/// A configuration whose probes stay out of the way.
fn config(buckets: Vec<BucketCfg>, rate_limit: &str) -> Config {
    let mut cfg = Config::new(buckets);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.server_extra_yaml = rate_limit.to_owned();
    cfg
}

/// `server.rate_limit` with `enabled: true` and these (4-space indented) limits.
fn server_limits(limits: &str) -> String {
    format!("  rate_limit:\n    enabled: true\n{limits}")
}

/// One GET on a connection from `source` (any 127/8 address is loopback).
async fn get_from(
    source: Ipv4Addr,
    addr: SocketAddr,
    target: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let exchange = async {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::from((source, 0))).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut request = Request::get(target).header("host", addr.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = sender
            .send_request(request.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        Resp {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await.unwrap().to_bytes(),
        }
    };
    tokio::time::timeout(DEADLINE, exchange)
        .await
        .unwrap_or_else(|_| panic!("GET {target} from {source}: no answer within {DEADLINE:?}"))
}

/// What a client got by sending until it was refused.
struct Run {
    /// Requests answered 200 before the refusal.
    passed: usize,
    /// The first refusal.
    refused: Resp,
    /// From the first request to the refusal.
    elapsed: Duration,
}

/// Sends (one at a time) until the first 429.
async fn until_refused<F, Fut>(mut send: F) -> Run
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Resp>,
{
    let start = Instant::now();
    let mut passed = 0;
    loop {
        let r = send().await;
        match r.status {
            200 => assert_eq!(r.body.as_ref(), BODY),
            429 => {
                return Run {
                    passed,
                    refused: r,
                    elapsed: start.elapsed(),
                };
            }
            _ => panic!("unexpected answer: {}", r.describe()),
        }
        passed += 1;
        assert!(passed < 1000, "never refused");
    }
}

/// At 1 request/s a fresh budget lets through at least `burst` requests and
/// at most `burst` plus one per second that went by.
#[track_caller]
fn assert_passed(run: &Run, burst: usize) {
    let most = burst + run.elapsed.as_secs() as usize + 1;
    assert!(
        (burst..=most).contains(&run.passed),
        "{} requests passed a burst of {burst} in {:?}",
        run.passed,
        run.elapsed
    );
}

/// A 429 with the JSON error, its request id, `Retry-After` and `RateLimit-*`.
#[track_caller]
fn assert_throttled(r: &Resp, burst: u32) {
    assert_error(r, 429, Some("TooManyRequests"));
    // At 1 request/s the next one is at most a second away (rounded up).
    assert_eq!(r.header("retry-after"), Some("1"), "{}", r.describe());
    assert_eq!(
        r.header("ratelimit-limit"),
        Some(burst.to_string().as_str())
    );
    assert_eq!(r.header("ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("ratelimit-reset"), Some("1"));
}

/// `yatagarasu_rate_limited_total{scope,bucket}`.
async fn refused_total(proxy: &Proxy, scope: &str, bucket: &str) -> f64 {
    let (_, samples) = scrape(proxy).await;
    sample_sum(
        &samples,
        "yatagarasu_rate_limited_total",
        &[("scope", scope), ("bucket", bucket)],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_limit_is_shared_by_every_bucket_and_refusals_stay_local() {
    let s3 = s3_with_object().await;
    let buckets = vec![BucketCfg::new("a", &s3, BKT), BucketCfg::new("b", &s3, BKT)];
    let limits = server_limits("    global: {requests_per_second: 1, burst: 5}\n");
    let proxy = Proxy::start(&config(buckets, &limits)).await;

    let (on_a, on_b) = (format!("/a/{KEY}"), format!("/b/{KEY}"));
    let first = until_refused(|| get(proxy.main, &on_a)).await;
    assert_passed(&first, 5);
    assert_throttled(&first.refused, 5);
    assert_eq!(
        s3.requests_for(KEY).len(),
        first.passed,
        "a refused request never reaches S3"
    );

    // Bucket b draws on the same budget: both together stay within one burst.
    let second = until_refused(|| get(proxy.main, &on_b)).await;
    let most = 5 + (first.elapsed + second.elapsed).as_secs() as usize + 2;
    assert!(
        first.passed + second.passed <= most,
        "{} + {} passed one global burst of 5",
        first.passed,
        second.passed
    );
    assert_throttled(&second.refused, 5);
    assert_eq!(s3.requests_for(KEY).len(), first.passed + second.passed);
    assert_eq!(refused_total(&proxy, "global", "a").await, 1.0);
    assert_eq!(refused_total(&proxy, "global", "b").await, 1.0);
    assert_eq!(refused_total(&proxy, "ip", "a").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_address_has_its_own_budget() {
    let s3 = s3_with_object().await;
    let limits = server_limits("    per_ip: {requests_per_second: 1, burst: 3}\n");
    let proxy = Proxy::start(&config(vec![BucketCfg::new("a", &s3, BKT)], &limits)).await;
    let target = format!("/a/{KEY}");

    let two = Ipv4Addr::new(127, 0, 0, 2);
    let three = Ipv4Addr::new(127, 0, 0, 3);
    let from_two = until_refused(|| get_from(two, proxy.main, &target, &[])).await;
    assert_passed(&from_two, 3);
    assert_throttled(&from_two.refused, 3);
    // A full burst for the other address, right after the first ran out.
    let from_three = until_refused(|| get_from(three, proxy.main, &target, &[])).await;
    assert_passed(&from_three, 3);
    assert_throttled(&from_three.refused, 3);
    assert_eq!(
        s3.requests_for(KEY).len(),
        from_two.passed + from_three.passed
    );
    assert_eq!(refused_total(&proxy, "ip", "a").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_limit_applies_to_its_bucket_only() {
    let s3 = s3_with_object().await;
    let mut limited = BucketCfg::new("limited", &s3, BKT);
    limited.extra_yaml = "      rate_limit: {requests_per_second: 1, burst: 3}\n".to_owned();
    let free = BucketCfg::new("free", &s3, BKT);
    let proxy = Proxy::start(&config(vec![limited, free], "")).await;

    let target = format!("/limited/{KEY}");
    let run = until_refused(|| get(proxy.main, &target)).await;
    assert_passed(&run, 3);
    assert_throttled(&run.refused, 3);
    for _ in 0..20 {
        let r = get(proxy.main, &format!("/free/{KEY}")).await;
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    assert_eq!(refused_total(&proxy, "bucket", "limited").await, 1.0);
    assert_eq!(refused_total(&proxy, "bucket", "free").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_limited_by_their_claim_and_anonymous_clients_by_address() {
    let s3 = s3_with_object().await;
    let mut private = BucketCfg::new("private", &s3, BKT);
    private.extra_yaml = format!(
        "    auth:\n      enabled: true\n      jwt:\n        algorithm: HS256\n        secret: {}\n    \
         rate_limit_per_user: {{requests_per_second: 1, burst: 3}}\n",
        q(SECRET)
    );
    let mut open = BucketCfg::new("open", &s3, BKT);
    open.extra_yaml = "    rate_limit_per_user: {requests_per_second: 1, burst: 2}\n".to_owned();
    let proxy = Proxy::start(&config(vec![private, open], "")).await;

    let token = |sub: &str| sign(Algorithm::HS256, "", None, &claims(json!({ "sub": sub })));
    let target = format!("/private/{KEY}");
    for user in ["alice", "bob"] {
        let bearer = format!("Bearer {}", token(user));
        let headers = [("authorization", bearer.as_str())];
        let run = until_refused(|| send(proxy.main, "GET", &target, &headers)).await;
        assert_passed(&run, 3);
        assert_throttled(&run.refused, 3);
    }
    // Authentication runs first: a request without a token is a 401, not a 429.
    assert_error(&get(proxy.main, &target).await, 401, None);

    let target = format!("/open/{KEY}");
    for source in [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)] {
        let run = until_refused(|| get_from(source, proxy.main, &target, &[])).await;
        assert_passed(&run, 2);
        assert_throttled(&run.refused, 2);
    }
    assert_eq!(refused_total(&proxy, "user", "private").await, 2.0);
    assert_eq!(refused_total(&proxy, "user", "open").await, 2.0);
}

/// Rewrites the configuration and waits for the reload to be applied.
async fn reload(proxy: &Proxy, cfg: &Config) {
    proxy.write_config(&cfg.yaml());
    let from = proxy.log_len();
    proxy.signal("HUP");
    proxy.wait_for_message(from, "configuration reloaded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_unchanged_limits_and_applies_new_ones() {
    let s3 = s3_with_object().await;
    let limits = server_limits("    global: {requests_per_second: 1, burst: 5}\n");
    let mut cfg = config(vec![BucketCfg::new("a", &s3, BKT)], &limits);
    let proxy = Proxy::start(&cfg).await;
    let target = format!("/a/{KEY}");

    let run = until_refused(|| get(proxy.main, &target)).await;
    assert_passed(&run, 5);
    let exhausted = Instant::now();

    // Same limit, another change: the spent budget is kept, so at most one
    // request per second since it ran out passes (a fresh limit: 5).
    cfg.buckets.push(BucketCfg::new("other", &s3, BKT));
    reload(&proxy, &cfg).await;
    let kept = until_refused(|| get(proxy.main, &target)).await;
    let most = exhausted.elapsed().as_secs() as usize + 1;
    assert!(
        kept.passed <= most,
        "{} passed after the reload",
        kept.passed
    );

    // A new burst takes effect with a fresh budget.
    cfg.server_extra_yaml = server_limits("    global: {requests_per_second: 1, burst: 40}\n");
    reload(&proxy, &cfg).await;
    let larger = until_refused(|| get(proxy.main, &target)).await;
    assert_passed(&larger, 40);
    assert_throttled(&larger.refused, 40);

    // Disabled: nothing is refused any more.
    cfg.server_extra_yaml =
        "  rate_limit:\n    enabled: false\n    global: {requests_per_second: 1}\n".into();
    reload(&proxy, &cfg).await;
    for _ in 0..20 {
        let r = get(proxy.main, &target).await;
        assert_eq!(r.status, 200, "{}", r.describe());
    }
}

/// 10,000 client addresses named by a trusted proxy in front (simulated by
/// `X-Forwarded-For` from 127.0.0.1) each get their own budget: the per-address
/// limit keys on the resolved client, not on the proxy in front, and the
/// store (bounded to `max_tracked_ips` = 1000, see `rate_limit::store`'s
/// unit tests for the bound itself) keeps serving while it evicts. An
/// address that spent its budget is then refused like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_forwarded_addresses_each_get_their_own_budget() {
    let upstream = common::faulty::Faulty::object(BODY).await;
    let bucket = BucketCfg::at("a", &upstream.endpoint(), BKT, ACCESS_KEY, SECRET_KEY);
    let limits = format!(
        "  trusted_proxies: [\"127.0.0.1\"]\n{}",
        server_limits("    per_ip: {requests_per_second: 1, burst: 1, max_tracked_ips: 1000}\n")
    );
    let proxy = Proxy::start(&config(vec![bucket], &limits)).await;
    let target = format!("/a/{KEY}");
    for chunk in 0..200u32 {
        let sends = (0..50u32).map(|i| {
            let n = chunk * 50 + i;
            let client = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255);
            let target = target.clone();
            async move {
                let r = send(proxy.main, "GET", &target, &[("x-forwarded-for", &client)]).await;
                (client, r)
            }
        });
        for (client, r) in futures_util::future::join_all(sends).await {
            assert_eq!(r.status, 200, "{client}: {}", r.describe());
            assert_eq!(r.body.as_ref(), BODY);
        }
    }
    assert_eq!(upstream.requests(), 10_000);
    assert_eq!(refused_total(&proxy, "ip", "a").await, 0.0);
    // One forwarded client sending on: refused once its burst is spent.
    let again = until_refused(|| {
        send(
            proxy.main,
            "GET",
            &target,
            &[("x-forwarded-for", "10.0.0.7")],
        )
    })
    .await;
    assert_passed(&again, 0);
    assert_throttled(&again.refused, 1);
}
