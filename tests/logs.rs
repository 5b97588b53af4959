//! JSON logs: layout, access log fields, and no secrets.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::Value;

const BKT: &str = "logs-bkt";
const TOKEN: &str = "logs-admin-TOKEN-8812";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_with_access_fields_and_no_secrets() {
    let s3 = S3Server::start(&[BKT]).await;
    let body = pattern_bytes(4321);
    s3.write_object(BKT, "f.txt", &body);
    let mut cfg = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    cfg.admin_token = Some(TOKEN.to_owned());
    let proxy = Proxy::start(&cfg).await;

    let r1 = send(
        proxy.main,
        "GET",
        "/products/f.txt",
        &[
            ("x-request-id", "logs-req-1"),
            ("authorization", "Bearer sometoken123"),
            ("cookie", "session=cookievalue987"),
        ],
    )
    .await;
    assert_eq!(r1.status, 200, "{}", r1.describe());
    let r2 = send(
        proxy.main,
        "GET",
        "/products/f.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAQUERYCRED%2F20240101&\
         X-Amz-Signature=deadbeefsig0123&response-content-type=text%2Fplain",
        &[("x-request-id", "logs-req-2")],
    )
    .await;
    assert_eq!(r2.status, 200, "{}", r2.describe());
    let r3 = send(
        proxy.main,
        "GET",
        "/nope/x",
        &[("x-request-id", "logs-req-3")],
    )
    .await;
    assert_eq!(r3.status, 404);
    let r4 = send(
        proxy.main,
        "HEAD",
        "/products/f.txt",
        &[("x-request-id", "logs-req-4")],
    )
    .await;
    assert_eq!(r4.status, 200);
    let r5 = send(
        proxy.main,
        "GET",
        "/products/missing.txt",
        &[("x-request-id", "logs-req-5")],
    )
    .await;
    assert_eq!(r5.status, 404);
    let bearer = format!("Bearer {TOKEN}");
    let ok = send_with_body(
        proxy.admin,
        "POST",
        "/admin/reload",
        &[("authorization", &bearer), ("x-yatagarasu-admin", "1")],
        Bytes::new(),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.describe());
    let denied = send_with_body(
        proxy.admin,
        "POST",
        "/admin/reload",
        &[
            ("authorization", "Bearer wrong-admin-guess-999"),
            ("x-yatagarasu-admin", "1"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(denied.status, 401, "{}", denied.describe());

    // A generated request id is the one in the access log.
    let r6 = get(proxy.main, "/products/f.txt").await;
    let generated = r6.header("x-request-id").unwrap_or_default().to_owned();
    assert!(is_uuid_v4(&generated), "{}", r6.describe());
    let a6 = proxy.wait_access_log(&generated).await;

    let a1 = proxy.wait_access_log("logs-req-1").await;
    let a2 = proxy.wait_access_log("logs-req-2").await;
    let a3 = proxy.wait_access_log("logs-req-3").await;
    let a4 = proxy.wait_access_log("logs-req-4").await;
    let a5 = proxy.wait_access_log("logs-req-5").await;

    // Strict layout: fields flattened at the top level.
    let check =
        |ev: &Value, method: &str, path: &str, bucket: &str, status: u64, bytes: Option<u64>| {
            let mut problems = Vec::new();
            let mut expect = |name: &str, ok: bool| {
                if !ok {
                    problems.push(format!("{name} = {:?}", ev.get(name)));
                }
            };
            expect("target", ev["target"] == "access");
            expect("message", ev["message"] == "request finished");
            expect("level", ev["level"].is_string());
            expect("timestamp", ev["timestamp"].is_string());
            expect("method", ev["method"] == method);
            expect("path", ev["path"] == path);
            expect("bucket", ev["bucket"] == bucket);
            expect("status", ev["status"].as_u64() == Some(status));
            expect(
                "bytes",
                match bytes {
                    Some(b) => ev["bytes"].as_u64() == Some(b),
                    None => ev["bytes"].is_u64(),
                },
            );
            expect("duration_ms", ev["duration_ms"].is_number());
            expect(
                "client",
                ev["client"]
                    .as_str()
                    .is_some_and(|c| c.contains("127.0.0.1")),
            );
            expect("completed", ev["completed"] == true);
            expect("span.name", ev["span"]["name"] == "request");
            assert!(
                problems.is_empty(),
                "access log event {ev}:\n{}",
                problems.join("\n")
            );
        };
    check(
        &a1,
        "GET",
        "/products/f.txt",
        "products",
        200,
        Some(body.len() as u64),
    );
    check(
        &a2,
        "GET",
        "/products/f.txt",
        "products",
        200,
        Some(body.len() as u64),
    );
    check(&a3, "GET", "/nope/x", "none", 404, None);
    check(&a4, "HEAD", "/products/f.txt", "products", 200, Some(0));
    check(&a5, "GET", "/products/missing.txt", "products", 404, None);
    check(
        &a6,
        "GET",
        "/products/f.txt",
        "products",
        200,
        Some(body.len() as u64),
    );

    // Every stdout line is a JSON object with the common fields.
    for line in proxy.logs() {
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {line}"));
        for f in ["timestamp", "level", "message", "target"] {
            assert!(v.get(f).is_some(), "log line without `{f}`: {line}");
        }
    }
    // The listening events, strictly flattened.
    let listening: Vec<Value> = proxy
        .json_logs()
        .into_iter()
        .filter(|v| v["message"] == "listening")
        .collect();
    for l in ["main", "admin", "metrics"] {
        assert!(
            listening.iter().any(|v| v["listener"] == l
                && v["address"]
                    .as_str()
                    .is_some_and(|a| a.parse::<std::net::SocketAddr>().is_ok())),
            "no flattened `listening` event for {l}: {listening:?}"
        );
    }

    // No secrets anywhere in the output.
    let all = proxy.all_output();
    for secret in [
        SECRET_KEY,
        ACCESS_KEY,
        TOKEN,
        "sometoken123",
        "cookievalue987",
        "Signature=",
        "deadbeefsig0123",
        "AKIAQUERYCRED",
        "wrong-admin-guess-999",
    ] {
        assert!(!all.contains(secret), "the logs contain {secret:?}");
    }
}

/// With `logging.format: text`, a value carrying a newline (here an S3 error
/// message echoing a query parameter) cannot start a forged log line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_escape_newlines_so_no_line_can_be_forged() {
    let s3 = S3Server::start(&[BKT]).await;
    s3.write_object(BKT, "f.txt", b"hello");
    let cfg = Config::new(vec![BucketCfg::new("products", &s3, BKT)]);
    let proxy = Proxy::start_yaml(&cfg.yaml_text_logs(), &[]).await;
    assert!(
        proxy.json_logs().is_empty(),
        "text format wrote JSON:\n{}",
        proxy.log_dump()
    );

    // A whole access line, as the text format writes one, after a newline.
    let forged = "2026-01-01T00:00:00.000000Z  INFO request{request_id=forged}: access: \
                  request finished method=\"GET\" path=\"/priv/secret.txt\" status=200";
    let target = format!(
        "/products/f.txt?response-expires=x%0A{}%0D%0A%1B%5B2J",
        encode_key(forged)
    );
    let r = send(
        proxy.main,
        "GET",
        &target,
        &[("x-request-id", "text-forge-1")],
    )
    .await;
    assert_eq!(
        r.status,
        400,
        "s3s-fs should refuse the date: {}",
        r.describe()
    );

    // The S3 error (and the access line) of the request are logged.
    let lines = eventually("the S3 error and access lines", DEADLINE, || async {
        let lines = proxy.logs();
        let mine = |needle: &str| {
            lines
                .iter()
                .any(|l| l.contains("request_id=text-forge-1") && l.contains(needle))
        };
        if mine("S3 returned an error") && mine("request finished") {
            Ok(lines)
        } else {
            Err(proxy.log_dump())
        }
    })
    .await;
    for line in &lines {
        assert!(
            is_text_log_line(line),
            "a stdout line that is not a log event: {line:?}\n{}",
            proxy.log_dump()
        );
        assert!(!line.contains('\u{1b}'), "raw ESC in {line:?}");
    }
    let s3_error = lines
        .iter()
        .find(|l| l.contains("S3 returned an error"))
        .unwrap();
    assert!(
        s3_error.contains(&format!("x\\n{forged}\\r\\n\\u{{1b}}[2J")),
        "the forged text is not escaped in the S3 error line: {s3_error}"
    );
}
