//! The admin API refuses browsers (cross-origin forms and fetches) and
//! DNS-rebinding pages, with or without an admin token.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::Value;

const BKT: &str = "admin-sec-bkt";
const TOKEN: &str = "admin-sec-TOKEN-4471";

/// A refused call: the expected `reason`, the request headers, the body.
type Attempt<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

/// The documented form of a state-changing admin call.
const ADMIN_HEADER: (&str, &str) = ("x-yatagarasu-admin", "1");

async fn status(proxy: &Proxy) -> Value {
    let r = send(proxy.admin, "GET", "/admin/status", &[]).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    r.json()
}

async fn post(proxy: &Proxy, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
    send_with_body(
        proxy.admin,
        "POST",
        path,
        headers,
        Bytes::copy_from_slice(body.as_bytes()),
    )
    .await
}

/// A 403 with the JSON error body and request id, and its log line.
async fn assert_refused(proxy: &Proxy, r: &Resp, reason: &str) {
    assert_error(r, 403, Some("Forbidden"));
    let id = r.header("x-request-id").unwrap_or_default().to_owned();
    proxy
        .wait_for_log(
            0,
            &format!("admin request refused ({reason})"),
            DEADLINE,
            |v| {
                log_message(v) == Some("admin request refused")
                    && log_field(v, "reason").and_then(Value::as_str) == Some(reason)
                    && v["span"]["request_id"] == id.as_str()
            },
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browsers_and_rebinding_pages_cannot_reload_or_read() {
    let s3 = S3Server::start(&[BKT]).await;
    let mut cfg = Config::new(vec![BucketCfg::new("one", &s3, BKT)]);
    let proxy = Proxy::start(&cfg).await;
    let before = status(&proxy).await;
    // A changed file on disk: a reload that happens is visible in /admin/status.
    cfg.buckets.push(BucketCfg::new("two", &s3, BKT));
    proxy.write_config(&cfg.yaml());

    let foreign_host = format!("evil.example:{}", proxy.admin.port());
    let refusals: [Attempt<'_>; 5] = [
        (
            "origin header",
            vec![("origin", "http://evil.example"), ADMIN_HEADER],
            "",
        ),
        ("origin header", vec![("origin", "null"), ADMIN_HEADER], ""),
        (
            "foreign host",
            vec![("host", foreign_host.as_str()), ADMIN_HEADER],
            "",
        ),
        // What an HTML form on any page can send, without preflight.
        (
            "missing admin header",
            vec![("content-type", "application/x-www-form-urlencoded")],
            "a=1",
        ),
        (
            "missing admin header",
            vec![("content-type", "text/plain")],
            "x",
        ),
    ];
    for (reason, headers, body) in &refusals {
        let r = post(&proxy, "/admin/reload", headers, body).await;
        assert_refused(&proxy, &r, reason).await;
        let r = post(&proxy, "/admin/cache/purge", headers, body).await;
        assert_refused(&proxy, &r, reason).await;
    }
    let after = status(&proxy).await;
    assert_eq!(
        after["generation"], before["generation"],
        "a refused call reloaded"
    );
    assert!(
        proxy
            .json_logs()
            .iter()
            .all(|v| log_message(v) != Some("configuration reloaded")),
        "a refused call reloaded"
    );

    // Reading is refused to a rebinding page too.
    let r = send(
        proxy.admin,
        "GET",
        "/admin/status",
        &[("host", foreign_host.as_str())],
    )
    .await;
    assert_refused(&proxy, &r, "foreign host").await;
    let r = send(
        proxy.admin,
        "GET",
        "/admin/cache/stats",
        &[("origin", "http://evil.example")],
    )
    .await;
    assert_refused(&proxy, &r, "origin header").await;

    // The documented form works, under every loopback name.
    let localhost = format!("localhost:{}", proxy.admin.port());
    for host in [proxy.admin.to_string(), localhost] {
        let r = send(
            proxy.admin,
            "GET",
            "/admin/status",
            &[("host", host.as_str())],
        )
        .await;
        assert_eq!(r.status, 200, "{host}: {}", r.describe());
    }
    let r = post(&proxy, "/admin/reload", &[ADMIN_HEADER], "").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let reloaded = status(&proxy).await;
    assert_eq!(
        reloaded["buckets"].as_array().map(Vec::len),
        Some(2),
        "{reloaded}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_rules_hold_with_a_token_and_allowed_hosts_add_names() {
    let s3 = S3Server::start(&[BKT]).await;
    let mut cfg = Config::new(vec![BucketCfg::new("one", &s3, BKT)]);
    cfg.admin_token = Some(TOKEN.to_owned());
    cfg.admin_extra_yaml = "  allowed_hosts: [\"Admin.Internal\"]\n".to_owned();
    let proxy = Proxy::start(&cfg).await;
    let bearer = format!("Bearer {TOKEN}");
    let auth = ("authorization", bearer.as_str());

    // A valid token does not let a browser or a rebinding page in.
    let r = post(
        &proxy,
        "/admin/reload",
        &[auth, ADMIN_HEADER, ("origin", "http://evil.example")],
        "",
    )
    .await;
    assert_refused(&proxy, &r, "origin header").await;
    let r = post(
        &proxy,
        "/admin/reload",
        &[auth, ("host", "evil.example")],
        "",
    )
    .await;
    assert_refused(&proxy, &r, "foreign host").await;
    let r = post(&proxy, "/admin/reload", &[auth], "").await;
    assert_refused(&proxy, &r, "missing admin header").await;

    // A listed name is accepted (any case, any port); the token is still checked.
    let r = send(
        proxy.admin,
        "GET",
        "/admin/status",
        &[("host", "admin.internal:9091")],
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.describe());
    let r = send(
        proxy.admin,
        "GET",
        "/admin/status",
        &[auth, ("host", "ADMIN.internal:9091")],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = post(
        &proxy,
        "/admin/reload",
        &[auth, ADMIN_HEADER, ("host", "admin.internal")],
        "",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = send(
        proxy.admin,
        "GET",
        "/admin/status",
        &[auth, ("host", "other.internal")],
    )
    .await;
    assert_refused(&proxy, &r, "foreign host").await;
    // Secrets stay out of the refusals' logs.
    assert!(
        !proxy.all_output().contains(TOKEN),
        "the logs contain the admin token"
    );
}
