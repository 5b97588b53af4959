//! `server.security_limits` against the real binary and a real S3: a URI,
//! header block, header count or body beyond its limit is answered with its
//! status and the JSON error (with the request id), counted by reason, and
//! never reaches S3.

mod common;

use bytes::Bytes;
use common::*;

const BKT: &str = "limits-bkt";
const KEY: &str = "a/b.txt";

async fn start(server_yaml: &str) -> (S3Server, Proxy) {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, KEY, b"limited\n");
    let mut cfg = Config::new(vec![BucketCfg::new("lim", &s3, BKT)]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.server_extra_yaml = server_yaml.to_owned();
    let proxy = Proxy::start(&cfg).await;
    proxy.wait_ready().await;
    (s3, proxy)
}

/// Asserts the JSON error answer of a refused request.
#[track_caller]
fn assert_refused(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.describe());
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{v}");
    let id = v["error"]["request_id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{v}");
    assert_eq!(r.header("x-request-id"), Some(id));
}

fn rejections(text: &str, reason: &str) -> f64 {
    let series = format!("yatagarasu_security_limit_rejections_total{{reason=\"{reason}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_default_limit_is_a_json_answer_and_nothing_goes_upstream() {
    let (s3, proxy) = start("").await;
    let ok = send(proxy.main, "GET", &format!("/lim/{KEY}"), &[]).await;
    assert_eq!(ok.status, 200, "{}", ok.describe());

    let long = format!("/lim/{KEY}?{}", "x".repeat(8200));
    assert_refused(
        &send(proxy.main, "GET", &long, &[]).await,
        414,
        "UriTooLong",
    );

    let names: Vec<String> = (0..101).map(|i| format!("x-extra-{i}")).collect();
    let many: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "1")).collect();
    let r = send(proxy.main, "GET", &format!("/lim/{KEY}"), &many).await;
    assert_refused(&r, 431, "HeadersTooLarge");

    let big = "v".repeat(17_000);
    let r = send(
        proxy.main,
        "GET",
        &format!("/lim/{KEY}"),
        &[("x-big", &big)],
    )
    .await;
    assert_refused(&r, 431, "HeadersTooLarge");

    let body = Bytes::from_static(b"0123456789");
    let r = send_with_body(proxy.main, "GET", &format!("/lim/{KEY}"), &[], body).await;
    assert_refused(&r, 413, "PayloadTooLarge");

    let gets = s3
        .requests_for(KEY)
        .iter()
        .filter(|r| r.method == "GET")
        .count();
    assert_eq!(gets, 1, "only the allowed request reached S3");
    let text = send(proxy.metrics, "GET", "/metrics", &[]).await.text();
    for reason in ["uri_length", "header_count", "header_size", "body_size"] {
        assert_eq!(rejections(&text, reason), 1.0, "{reason}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_limits_apply() {
    let yaml =
        "  security_limits:\n    max_uri_length: 64\n    max_headers: 3\n    max_body_size: 16\n";
    let (_s3, proxy) = start(yaml).await;
    let path = format!("/lim/{KEY}?{}", "x".repeat(60));
    assert_refused(
        &send(proxy.main, "GET", &path, &[]).await,
        414,
        "UriTooLong",
    );
    let r = send(
        proxy.main,
        "GET",
        &format!("/lim/{KEY}"),
        &[("a", "1"), ("b", "2"), ("c", "3")],
    )
    .await;
    assert_refused(&r, 431, "HeadersTooLarge");
    let body = Bytes::from_static(b"small body");
    let r = send_with_body(proxy.main, "GET", &format!("/lim/{KEY}"), &[], body).await;
    assert_eq!(
        r.status,
        200,
        "a body within max_body_size: {}",
        r.describe()
    );
}
