//! `buckets[i].ip_filter` against the real binary and a real S3 server:
//! allow and block lists of both families, block wins, the 403 answer, the
//! metric, and reloads. Test clients bind to 127.0.0.2, 127.0.0.3, ::1 to
//! be distinct peers; IPv6 clients behind a proxy come through
//! `X-Forwarded-For` from the trusted 127.0.0.1.

mod common;
#[path = "common/from_addr.rs"]
mod from_addr;

use std::net::{IpAddr, SocketAddr};

use common::*;
use from_addr::get_from;

const BKT: &str = "ip-filter";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn bucket(s3: &S3Server, name: &str, ip_filter: &str) -> BucketCfg {
    let mut b = BucketCfg::new(name, s3, BKT);
    if !ip_filter.is_empty() {
        b.extra_yaml = format!("    ip_filter: {ip_filter}\n");
    }
    b
}

fn config(buckets: Vec<BucketCfg>) -> Config {
    let mut cfg = Config::new(buckets);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.server_extra_yaml = "  trusted_proxies: [127.0.0.1]\n".to_owned();
    cfg
}

async fn s3() -> S3Server {
    let s3 = S3Server::start(&[BKT]).await;
    for key in ["k.txt", "refused.txt"] {
        s3.write_object(BKT, key, b"object");
    }
    s3
}

/// `yatagarasu_ip_filter_denied_total{bucket}`.
async fn denied(proxy: &Proxy, bucket: &str) -> f64 {
    let (_, samples) = scrape(proxy).await;
    sample_value(
        &samples,
        "yatagarasu_ip_filter_denied_total",
        &[("bucket", bucket)],
    )
    .unwrap_or(0.0)
}

/// Asserts the 403 JSON answer of a refusal.
fn assert_refused(r: &Resp, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.describe());
    let v = r.json();
    assert_eq!(v["error"]["code"], "AccessDenied", "{what}: {v}");
    let id = v["error"]["request_id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{what}: {v}");
    assert_eq!(r.header("x-request-id"), Some(id), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv4_allow_and_block_lists_block_wins_nothing_goes_upstream() {
    let s3 = s3().await;
    let proxy = Proxy::start(&config(vec![
        bucket(&s3, "open", ""),
        bucket(
            &s3,
            "listed",
            "{allowlist: [127.0.0.2, 127.0.0.3/32, \"10.0.0.0/8\"], blocklist: [127.0.0.3]}",
        ),
        bucket(&s3, "blocked", "{blocklist: [\"127.0.0.4/32\"]}"),
    ]))
    .await;
    let get = |from: &str, target: &'static str| get_from(ip(from), proxy.main, target, &[]);

    assert_eq!(get("127.0.0.2", "/listed/k.txt").await.status, 200);
    assert_refused(&get("127.0.0.3", "/listed/refused.txt").await, "block wins");
    assert_refused(&get("127.0.0.4", "/listed/refused.txt").await, "not listed");
    assert_refused(&get("127.0.0.4", "/blocked/refused.txt").await, "blocked");
    assert_eq!(get("127.0.0.5", "/blocked/k.txt").await.status, 200);
    assert_eq!(get("127.0.0.4", "/open/k.txt").await.status, 200);

    assert!(
        s3.requests_for("refused.txt").is_empty(),
        "a refused request never reaches S3"
    );
    assert_eq!(denied(&proxy, "listed").await, 2.0);
    assert_eq!(denied(&proxy, "blocked").await, 1.0);
    assert_eq!(denied(&proxy, "open").await, 0.0);
    proxy
        .wait_for_message(0, "client address refused by the bucket's IP filter")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_clients_behind_a_trusted_proxy() {
    let s3 = s3().await;
    let proxy = Proxy::start(&config(vec![bucket(
        &s3,
        "v6",
        "{allowlist: [\"2001:db8::/32\"], blocklist: [\"2001:db8:bad::/48\"]}",
    )]))
    .await;
    let main = proxy.main;
    let via_proxy = |client: &'static str| async move {
        let headers = [("x-forwarded-for", client)];
        get_from(ip("127.0.0.1"), main, "/v6/k.txt", &headers).await
    };
    assert_eq!(via_proxy("2001:db8::1").await.status, 200);
    assert_eq!(
        via_proxy("198.51.100.1, [2001:db8:1::9]:443").await.status,
        200
    );
    assert_refused(&via_proxy("2001:db8:bad::1").await, "blocked v6");
    assert_refused(&via_proxy("2001:db9::1").await, "v6 outside the allowlist");
    assert_refused(&via_proxy("203.0.113.1").await, "v4 outside the allowlist");
    // An untrusted peer claiming an allowlisted address is itself refused.
    let spoof = get_from(
        ip("127.0.0.2"),
        proxy.main,
        "/v6/k.txt",
        &[("x-forwarded-for", "2001:db8::1")],
    )
    .await;
    assert_refused(&spoof, "spoofed from an untrusted peer");
    assert_eq!(denied(&proxy, "v6").await, 4.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_and_ipv4_mapped_peers_on_a_dual_stack_listener() {
    let s3 = s3().await;
    let cfg = config(vec![bucket(
        &s3,
        "dual",
        "{blocklist: [\"::1\", 127.0.0.3]}",
    )]);
    let yaml = cfg
        .yaml()
        .replacen("address: \"127.0.0.1:0\"", "address: \"[::]:0\"", 1);
    let proxy = Proxy::start_yaml(&yaml, &[]).await;
    let port = proxy.main.port();
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    let v6 = SocketAddr::new(ip("::1"), port);
    assert_refused(
        &get_from(ip("::1"), v6, "/dual/refused.txt", &[]).await,
        "::1",
    );
    // Seen as ::ffff:127.0.0.3 by the dual-stack socket: still IPv4 for the filter.
    assert_refused(
        &get_from(ip("127.0.0.3"), v4, "/dual/refused.txt", &[]).await,
        "IPv4-mapped",
    );
    assert_eq!(
        get_from(ip("127.0.0.2"), v4, "/dual/k.txt", &[])
            .await
            .status,
        200
    );
    assert!(s3.requests_for("refused.txt").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_the_lists_and_a_rejected_one_changes_nothing() {
    let s3 = s3().await;
    let with = |filter: &str| config(vec![bucket(&s3, "b", filter)]).yaml();
    let proxy = Proxy::start_yaml(&with("{blocklist: [127.0.0.2]}"), &[]).await;
    let status = |from: &'static str| {
        let main = proxy.main;
        async move { get_from(ip(from), main, "/b/k.txt", &[]).await.status }
    };
    assert_eq!(
        (status("127.0.0.2").await, status("127.0.0.3").await),
        (403, 200)
    );

    let from = proxy.log_len();
    proxy.write_config(&with("{blocklist: [127.0.0.3]}"));
    proxy.signal("HUP");
    let (at, _) = proxy.wait_for_message(from, "configuration reloaded").await;
    assert_eq!(
        (status("127.0.0.2").await, status("127.0.0.3").await),
        (200, 403)
    );

    proxy.write_config(&with("{blocklist: [127.0.0.2, \"127.0.0.0/40\"]}"));
    proxy.signal("HUP");
    let (_, failed) = proxy
        .wait_for_message(at + 1, "configuration reload failed")
        .await;
    assert!(
        failed
            .to_string()
            .contains("buckets[0].ip_filter.blocklist[1]"),
        "{failed}"
    );
    assert_eq!(
        (status("127.0.0.2").await, status("127.0.0.3").await),
        (200, 403)
    );
}
