//! `server.trusted_proxies` against the real binary and a real S3 server:
//! which address the proxy takes for the client (seen through a bucket's
//! IP filter, a Rego policy on `input.client_ip`, and the access log).
//!
//! The proxy trusts 127.0.0.1; test clients bound to 127.0.0.2, 127.0.0.3
//! are distinct untrusted peers.

mod common;
#[path = "common/from_addr.rs"]
mod from_addr;

use std::net::IpAddr;

use common::*;
use from_addr::get_from;
use serde_json::Value;

const BKT: &str = "client-addr";
const TRUSTED: &str = "127.0.0.1";
/// A public address the tests claim to forward for.
const CLAIMED: &str = "203.0.113.7";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `open` (no filter), `only-claimed` (allowlist: [`CLAIMED`]),
/// `no-second` (blocklist: 127.0.0.2), `policy` (Rego: only [`CLAIMED`]),
/// with `trusted` as `server.trusted_proxies`.
fn config(s3: &S3Server, trusted: &str, policy: &std::path::Path) -> Config {
    let bucket = |name: &str, extra: String| {
        let mut b = BucketCfg::new(name, s3, BKT);
        b.extra_yaml = extra;
        b
    };
    let mut cfg = Config::new(vec![
        bucket("open", String::new()),
        bucket(
            "only-claimed",
            format!("    ip_filter:\n      allowlist: [\"{CLAIMED}\"]\n"),
        ),
        bucket(
            "no-second",
            "    ip_filter:\n      blocklist: [127.0.0.2]\n".to_owned(),
        ),
        bucket(
            "policy",
            format!(
                "    auth:\n      authorization:\n        type: rego\n        policy_path: {}\n",
                q(policy.to_str().unwrap())
            ),
        ),
    ]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.server_extra_yaml = format!("  trusted_proxies: {trusted}\n");
    cfg
}

struct World {
    s3: S3Server,
    _dir: tempfile::TempDir,
    policy: std::path::PathBuf,
}

async fn world() -> World {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "k.txt", b"object");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("client.rego");
    std::fs::write(
        &policy,
        format!(
            "package yatagarasu\nimport rego.v1\ndefault allow := false\n\
             allow if input.client_ip == \"{CLAIMED}\"\n"
        ),
    )
    .unwrap();
    World {
        s3,
        _dir: dir,
        policy,
    }
}

/// The access-log event of `response`.
async fn access_log(proxy: &Proxy, response: &Resp) -> Value {
    let id = response.header("x-request-id").expect("a request id");
    proxy.wait_access_log(id).await
}

fn field<'a>(event: &'a Value, name: &str) -> Option<&'a str> {
    log_field(event, name).and_then(Value::as_str)
}

/// Every way a client may claim an address.
fn spoofs() -> [(&'static str, String); 3] {
    [
        ("x-forwarded-for", CLAIMED.to_owned()),
        ("forwarded", format!("for={CLAIMED}")),
        ("x-real-ip", CLAIMED.to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_from_an_untrusted_peer_are_ignored() {
    let w = world().await;
    let proxy = Proxy::start(&config(&w.s3, &format!("[\"{TRUSTED}\"]"), &w.policy)).await;
    let second = ip("127.0.0.2");
    for (name, value) in spoofs() {
        let headers = [(name, value.as_str())];
        let r = get_from(second, proxy.main, "/only-claimed/k.txt", &headers).await;
        assert_eq!(r.status, 403, "{name}: {}", r.describe());
        let r = get_from(second, proxy.main, "/no-second/k.txt", &headers).await;
        assert_eq!(
            r.status,
            403,
            "{name}: the filter saw the peer: {}",
            r.describe()
        );
        let r = get_from(second, proxy.main, "/policy/k.txt", &headers).await;
        assert_eq!(
            r.status,
            403,
            "{name}: the policy saw the peer: {}",
            r.describe()
        );
        let r = get_from(second, proxy.main, "/open/k.txt", &headers).await;
        assert_eq!(r.status, 200, "{name}: {}", r.describe());
        let event = access_log(&proxy, &r).await;
        let client = field(&event, "client").unwrap_or_default();
        assert!(client.starts_with("127.0.0.2:"), "{name}: {event}");
        assert_eq!(field(&event, "peer"), None, "{name}: {event}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_is_trusted_by_default() {
    let w = world().await;
    let mut cfg = config(&w.s3, "[]", &w.policy);
    cfg.server_extra_yaml.clear();
    let proxy = Proxy::start(&cfg).await;
    for (name, value) in spoofs() {
        let headers = [(name, value.as_str())];
        let r = get_from(ip(TRUSTED), proxy.main, "/only-claimed/k.txt", &headers).await;
        assert_eq!(r.status, 403, "{name}: {}", r.describe());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_a_trusted_peer_the_right_most_untrusted_hop_is_the_client() {
    let w = world().await;
    let trusted = format!("[\"{TRUSTED}\", \"10.0.0.0/8\"]");
    let proxy = Proxy::start(&config(&w.s3, &trusted, &w.policy)).await;
    let forwarded = [
        (
            "x-forwarded-for",
            format!("198.51.100.1, {CLAIMED}, 10.1.1.1"),
        ),
        ("x-forwarded-for", format!("198.51.100.1, {CLAIMED}")),
        (
            "forwarded",
            format!("for=198.51.100.1, for=\"{CLAIMED}:4711\";proto=http, for=10.0.0.3"),
        ),
        ("x-real-ip", CLAIMED.to_owned()),
    ];
    for (name, value) in &forwarded {
        let headers = [(*name, value.as_str())];
        let r = get_from(ip(TRUSTED), proxy.main, "/only-claimed/k.txt", &headers).await;
        assert_eq!(r.status, 200, "{name}: {value}: {}", r.describe());
        assert_eq!(r.body.as_ref(), b"object");
        let r = get_from(ip(TRUSTED), proxy.main, "/policy/k.txt", &headers).await;
        assert_eq!(
            r.status,
            200,
            "{name}: the policy saw {CLAIMED}: {}",
            r.describe()
        );
        let event = access_log(&proxy, &r).await;
        assert_eq!(field(&event, "client"), Some(CLAIMED), "{event}");
        let peer = field(&event, "peer").unwrap_or_default();
        assert!(peer.starts_with("127.0.0.1:"), "{event}");
    }
    // Several X-Forwarded-For fields are one list, in order; quoted IPv6
    // with a port in Forwarded.
    let r = get_from(
        ip(TRUSTED),
        proxy.main,
        "/open/k.txt",
        &[
            ("forwarded", "for=192.0.2.1"),
            (
                "forwarded",
                "for=\"[2001:db8:cafe::17]:4711\", for=10.9.9.9",
            ),
        ],
    )
    .await;
    let event = access_log(&proxy, &r).await;
    assert_eq!(
        field(&event, "client"),
        Some("2001:db8:cafe::17"),
        "{event}"
    );
    let r = get_from(
        ip(TRUSTED),
        proxy.main,
        "/open/k.txt",
        &[
            ("x-forwarded-for", "192.0.2.1"),
            ("x-forwarded-for", "::ffff:192.0.2.2"),
        ],
    )
    .await;
    let event = access_log(&proxy, &r).await;
    assert_eq!(field(&event, "client"), Some("192.0.2.2"), "{event}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_values_get_a_normal_answer() {
    let w = world().await;
    let proxy = Proxy::start(&config(&w.s3, &format!("[\"{TRUSTED}\"]"), &w.policy)).await;
    let malformed: &[(&str, &str)] = &[
        ("x-forwarded-for", "garbage"),
        ("x-forwarded-for", "unknown"),
        ("x-forwarded-for", ",,, ,"),
        ("x-forwarded-for", "203.0.113.7:99999999"),
        ("x-forwarded-for", "[2001:db8::1"),
        ("forwarded", "for=_hidden"),
        ("forwarded", "for=\"[2001:db8::1]:80"),
        ("forwarded", "for=1.2.3.4;for=5.6.7.8"),
        ("forwarded", ";;;,,,=\"\\"),
        ("x-real-ip", "999.1.1.1"),
        ("x-real-ip", ""),
    ];
    for (name, value) in malformed {
        for (from, target) in [(TRUSTED, "/open/k.txt"), ("127.0.0.2", "/open/k.txt")] {
            let r = get_from(ip(from), proxy.main, target, &[(name, value)]).await;
            assert_eq!(
                r.status,
                200,
                "{name}: {value:?} from {from}: {}",
                r.describe()
            );
            let event = access_log(&proxy, &r).await;
            let client = field(&event, "client").unwrap_or_default();
            assert!(
                client.starts_with(&format!("{from}:")),
                "{name}: {value:?}: {event}"
            );
        }
    }
    // Bytes that are not text (obs-text), as a raw request from the trusted peer.
    let request = format!(
        "GET /open/k.txt HTTP/1.1\r\nhost: {}\r\nconnection: close\r\nx-forwarded-for: ",
        proxy.main
    );
    let mut request = request.into_bytes();
    request.extend_from_slice(b"\xff\xfe1.2.3.4\r\n\r\n");
    let r = raw_request(proxy.main, &request).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_proxies_change_on_reload() {
    let w = world().await;
    let proxy = Proxy::start(&config(&w.s3, "[]", &w.policy)).await;
    let claim = [("x-forwarded-for", CLAIMED)];
    let r = get_from(ip(TRUSTED), proxy.main, "/only-claimed/k.txt", &claim).await;
    assert_eq!(r.status, 403, "{}", r.describe());

    let from = proxy.log_len();
    proxy.write_config(&config(&w.s3, "[\"127.0.0.0/30\"]", &w.policy).yaml());
    proxy.signal("HUP");
    let (at, _) = proxy.wait_for_message(from, "configuration reloaded").await;
    let r = get_from(ip(TRUSTED), proxy.main, "/only-claimed/k.txt", &claim).await;
    assert_eq!(r.status, 200, "{}", r.describe());

    // A rejected reload keeps the trusted list in force.
    proxy.write_config(&config(&w.s3, "[\"127.0.0.0/33\"]", &w.policy).yaml());
    proxy.signal("HUP");
    proxy
        .wait_for_message(at + 1, "configuration reload failed")
        .await;
    let r = get_from(ip(TRUSTED), proxy.main, "/only-claimed/k.txt", &claim).await;
    assert_eq!(r.status, 200, "{}", r.describe());
}
