//! `observability.request_logging` (the original Yatagarasu's keys),
//! through the real binary: request and response lines, filtered by path
//! globs and status, with token-carrying headers redacted and the first
//! bytes of response bodies.

mod common;

use common::jwks::SECRET;
use common::*;
use serde_json::Value;

const BKT: &str = "reqlog-bkt";

/// Values that must never reach a log line.
const SECRETS: [&str; 6] = [
    "bearer-secret-1",
    "cookie-secret-2",
    "api-key-secret-3",
    "tenant-secret-4",
    "header-token-secret-5",
    "query-secret-6",
];

/// A public bucket `/b` and a private one `/p` taking tokens from
/// `X-Auth-Token`, with request logging configured by `logging`.
fn config(s3: &S3Server, logging: &str) -> Config {
    let mut private = BucketCfg::new("p", s3, BKT);
    private.extra_yaml = format!(
        "    auth:\n      enabled: true\n      jwt:\n        algorithm: HS256\n        secret: {}\n        \
         token_sources:\n          - type: header\n            name: X-Auth-Token\n",
        q(SECRET)
    );
    let mut cfg = Config::new(vec![BucketCfg::new("b", s3, BKT), private]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = logging.to_owned();
    cfg
}

const LOGGING: &str = "observability:\n  request_logging:\n    log_requests: true\n    \
     log_responses: true\n    include_paths: [\"/b/*\", \"/p/*\"]\n    exclude_paths: \
     [\"*.skip\"]\n    status_codes: [200, 206, 401]\n    redact_headers: [X-Tenant-Secret]\n    \
     log_request_body: true\n    log_response_body: true\n    max_body_size: 16\n";

fn lines_of<'a>(logs: &'a [Value], id: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|v| v["target"] == "request_log" && v["request_id"] == id)
        .collect()
}

fn line<'a>(logs: &'a [Value], id: &str, message: &str) -> &'a Value {
    let found: Vec<_> = lines_of(logs, id)
        .into_iter()
        .filter(|v| v["message"] == message)
        .collect();
    assert_eq!(found.len(), 1, "`{message}` of {id}: {found:#?}");
    found[0]
}

fn headers(line: &Value) -> String {
    line["headers"].as_str().unwrap_or_default().to_owned()
}

async fn get(proxy: &Proxy, method: &str, target: &str, id: &str, extra: &[(&str, &str)]) -> Resp {
    let mut headers = vec![("x-request-id", id)];
    headers.extend_from_slice(extra);
    send(proxy.main, method, target, &headers).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_responses_are_logged_as_configured() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "small.txt", b"hello world");
    let big = pattern_bytes(200_000);
    s3.write_object(BKT, "big.bin", &big);
    s3.write_object(BKT, "x.skip", b"skipped");
    let proxy = Proxy::start(&config(&s3, LOGGING)).await;

    let secrets = [
        ("authorization", "Bearer bearer-secret-1"),
        ("cookie", "session=cookie-secret-2"),
        ("x-api-key", "api-key-secret-3"),
        ("x-tenant-secret", "tenant-secret-4"),
        ("user-agent", "request-log-test"),
    ];
    let r = get(
        &proxy,
        "GET",
        "/b/small.txt?token=query-secret-6",
        "small",
        &secrets,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = get(&proxy, "GET", "/b/big.bin", "big", &[]).await;
    assert_eq!(
        r.body.as_ref(),
        &big[..],
        "the captured body streams unchanged"
    );
    let r = get(
        &proxy,
        "GET",
        "/b/big.bin",
        "range",
        &[("range", "bytes=0-3")],
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.describe());
    let r = get(&proxy, "HEAD", "/b/small.txt", "head", &[]).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = get(&proxy, "GET", "/b/missing.txt", "missing", &[]).await;
    assert_eq!(r.status, 404, "{}", r.describe());
    let r = get(&proxy, "GET", "/b/x.skip", "excluded", &[]).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    let r = get(&proxy, "GET", "/elsewhere/k", "not-included", &[]).await;
    assert_eq!(r.status, 404, "{}", r.describe());
    let token = [("x-auth-token", "header-token-secret-5")];
    let r = get(&proxy, "GET", "/p/small.txt", "private", &token).await;
    assert_eq!(r.status, 401, "{}", r.describe());
    // Its access line comes after every line of the requests above.
    let r = get(&proxy, "GET", "/b/small.txt", "last", &[]).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    proxy
        .wait_for_log(0, "access line of the last request", DEADLINE, |v| {
            v["target"] == "access" && v["span"]["request_id"] == "last"
        })
        .await;
    let logs = proxy.json_logs();

    // The request line: method, path without the query, client, headers
    // with the token-carrying ones redacted.
    let request = line(&logs, "small", "request received");
    assert_eq!(request["level"], "INFO");
    assert_eq!(request["method"], "GET");
    assert_eq!(request["path"], "/b/small.txt");
    assert_eq!(request["client"], "127.0.0.1");
    let sent = headers(request);
    for name in ["authorization", "cookie", "x-api-key", "x-tenant-secret"] {
        assert!(
            sent.contains(&format!("{name}: [REDACTED]")),
            "{name}: {sent}"
        );
    }
    assert!(sent.contains("user-agent: request-log-test"), "{sent}");
    // The response line: status, latency, headers and the whole short body.
    let response = line(&logs, "small", "response sent");
    assert_eq!(response["status"], 200);
    assert_eq!(response["span"]["request_id"], "small", "{response}");
    assert!(response["latency_ms"].is_number(), "{response}");
    assert!(
        headers(response).contains("content-length: 11"),
        "{response}"
    );
    assert_eq!(response["body"], "hello world");
    assert_eq!(response["body_truncated"], false);

    // A long body: its first `max_body_size` bytes.
    let response = line(&logs, "big", "response sent");
    let first = String::from_utf8_lossy(&big[..16]).into_owned();
    assert_eq!(response["body"], first.as_str());
    assert_eq!(response["body_truncated"], true);
    let response = line(&logs, "range", "response sent");
    assert_eq!(response["status"], 206);
    assert_eq!(
        response["body"],
        String::from_utf8_lossy(&big[..4]).as_ref()
    );
    assert_eq!(response["body_truncated"], false);
    let response = line(&logs, "head", "response sent");
    assert_eq!(response["body"], "");

    // Status filter: the 404's request is logged, its response is not.
    line(&logs, "missing", "request received");
    assert_eq!(lines_of(&logs, "missing").len(), 1);
    // Path filters: nothing for an excluded or a not included path.
    assert!(lines_of(&logs, "excluded").is_empty());
    assert!(lines_of(&logs, "not-included").is_empty());
    // A bucket's token header is redacted; its 401 is a listed status.
    let request = line(&logs, "private", "request received");
    assert!(
        headers(request).contains("x-auth-token: [REDACTED]"),
        "{request}"
    );
    assert_eq!(line(&logs, "private", "response sent")["status"], 401);

    let dump = proxy.log_dump();
    for secret in SECRETS {
        assert!(!dump.contains(secret), "{secret} was logged:\n{dump}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_turns_request_logging_on() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "k.txt", b"object");
    let proxy = Proxy::start(&config(&s3, "")).await;
    let r = get(&proxy, "GET", "/b/k.txt", "before", &[]).await;
    assert_eq!(r.status, 200, "{}", r.describe());

    let from = proxy.log_len();
    proxy.write_config(&config(&s3, LOGGING).yaml());
    proxy.signal("HUP");
    proxy.wait_for_message(from, "configuration reloaded").await;
    let r = get(&proxy, "GET", "/b/k.txt", "after", &[]).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    proxy
        .wait_for_log(from, "response line after the reload", DEADLINE, |v| {
            v["target"] == "request_log"
                && v["request_id"] == "after"
                && v["message"] == "response sent"
        })
        .await;
    assert!(lines_of(&proxy.json_logs(), "before").is_empty());
}
