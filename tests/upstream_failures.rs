//! Upstream failures and status passthrough, with a scripted upstream.

mod common;

use std::time::Instant;

use common::*;

const BKT: &str = "scripted-bkt";

/// One bucket `/s` in front of the scripted upstream.
fn config_for(up: &ScriptedUpstream) -> Config {
    Config::new(vec![BucketCfg::at(
        "s",
        &up.endpoint(),
        BKT,
        ACCESS_KEY,
        SECRET_KEY,
    )])
}

async fn proxy_for(up: &ScriptedUpstream, request_timeout_seconds: u64) -> Proxy {
    let mut cfg = config_for(up);
    cfg.request_timeout_seconds = request_timeout_seconds;
    Proxy::start(&cfg).await
}

#[track_caller]
fn assert_no_internals(r: &Resp, endpoint_port: u16) {
    let text = r.text();
    for needle in [
        BKT.to_owned(),
        format!("127.0.0.1:{endpoint_port}"),
        SCRIPTED_REQUEST_ID.to_owned(),
        SCRIPTED_HOST_ID.to_owned(),
        "<Error>".to_owned(),
        "scripted ".to_owned(),
    ] {
        assert!(
            !text.contains(&needle),
            "error body contains {needle:?}: {text}"
        );
    }
    for h in ["x-amz-request-id", "x-amz-id-2"] {
        assert!(
            r.header(h).is_none(),
            "{h} reached the client: {}",
            r.describe()
        );
    }
    assert_ne!(r.header("server"), Some("AmazonS3"), "{}", r.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_down_is_502() {
    let dead = closed_port();
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::at(
        "down",
        &format!("http://{dead}"),
        "down-bkt",
        ACCESS_KEY,
        SECRET_KEY,
    )]))
    .await;
    let r = get(proxy.main, "/down/file.txt").await;
    assert_error(&r, 502, Some("BadGateway"));
    let text = r.text();
    assert!(
        !text.contains(&dead.port().to_string()),
        "error leaks the endpoint: {text}"
    );
    assert!(
        !text.contains("down-bkt"),
        "error leaks the S3 bucket: {text}"
    );

    let h = send(proxy.main, "HEAD", "/down/file.txt", &[]).await;
    assert_eq!(h.status, 502, "HEAD: {}", h.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_stopped_while_running_is_502() {
    let mut s3 = S3Server::start(&["live-bkt"]).await;
    s3.write_object("live-bkt", "f.txt", b"alive");
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new("live", &s3, "live-bkt")])).await;
    let r = get(proxy.main, "/live/f.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    s3.stop().await;
    let r = get(proxy.main, "/live/f.txt").await;
    assert_error(&r, 502, Some("BadGateway"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_backend_is_504() {
    let up = ScriptedUpstream::start(|req| {
        if req.path().ends_with("/hang.txt") {
            Reply::hang()
        } else {
            Reply::new(200)
        }
    })
    .await;
    let proxy = proxy_for(&up, 1).await;
    let start = Instant::now();
    let r = get(proxy.main, "/s/hang.txt").await;
    let took = start.elapsed();
    assert_error(&r, 504, Some("GatewayTimeout"));
    eprintln!("504 after {took:?} (request_timeout_seconds: 1)");
    assert!(
        !up.requests_for("hang.txt").is_empty(),
        "the request must have reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_errors_are_mapped() {
    let up = ScriptedUpstream::start(|req| match req.path().rsplit('/').next().unwrap_or("") {
        "e500" => Reply::s3_error(500, "InternalError", BKT),
        "e503" => Reply::s3_error(503, "SlowDown", BKT),
        "e503plain" => Reply::s3_error(503, "ServiceUnavailable", BKT),
        "e502" => Reply::s3_error(502, "BadGateway", BKT),
        "e501" => Reply::s3_error(501, "NotImplemented", BKT),
        "e404key" => Reply::s3_error(404, "NoSuchKey", BKT),
        "e404bucket" => Reply::s3_error(404, "NoSuchBucket", BKT),
        "e403" => Reply::s3_error(403, "AccessDenied", BKT),
        "e403sig" => Reply::s3_error(403, "SignatureDoesNotMatch", BKT),
        "e403key" => Reply::s3_error(403, "InvalidAccessKeyId", BKT),
        "e416" => Reply::s3_error(416, "InvalidRange", BKT),
        _ => Reply::new(200),
    })
    .await;
    let proxy = proxy_for(&up, 30).await;
    let cases: &[(&str, u16, Option<&str>)] = &[
        ("e500", 502, None),
        ("e503", 503, None),
        ("e503plain", 503, None),
        ("e502", 502, None),
        ("e501", 502, None),
        ("e404key", 404, Some("NoSuchKey")),
        ("e404bucket", 404, None),
        ("e403", 403, Some("AccessDenied")),
        ("e403sig", 403, None),
        ("e403key", 403, None),
        ("e416", 416, None),
    ];
    let mut failures = Vec::new();
    for (key, status, code) in cases {
        let r = get(proxy.main, &format!("/s/{key}")).await;
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_error(&r, *status, *code);
            assert_no_internals(&r, up.addr().port());
        }));
        if ok.is_err() {
            failures.push(format!(
                "{key}: expected {status} {code:?}: {}",
                r.describe()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} mapping(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_modified_and_precondition_failed_pass_through() {
    let up = ScriptedUpstream::start(|req| match req.path().rsplit('/').next().unwrap_or("") {
        "cond.txt" if req.header("if-none-match") == Some("\"v1\"") => Reply::new(304)
            .header("ETag", "\"v1\"")
            .header("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
            .header("x-amz-request-id", SCRIPTED_REQUEST_ID),
        "cond.txt" if req.header("if-match").is_some_and(|m| m != "\"v1\"") => {
            Reply::s3_error(412, "PreconditionFailed", BKT)
        }
        "cond.txt" if req.header("if-unmodified-since").is_some() => {
            Reply::s3_error(412, "PreconditionFailed", BKT)
        }
        "cond.txt" => Reply::ok("version one").header("ETag", "\"v1\""),
        "partial.txt" => Reply::new(206)
            .header("Content-Range", "bytes 0-3/10")
            .header("ETag", "\"p\"")
            .body("0123"),
        _ => Reply::new(200),
    })
    .await;
    let proxy = proxy_for(&up, 30).await;

    let r = send(
        proxy.main,
        "GET",
        "/s/cond.txt",
        &[("if-none-match", "\"v1\"")],
    )
    .await;
    assert_eq!(r.status, 304, "{}", r.describe());
    assert_eq!(
        r.header("etag"),
        Some("\"v1\""),
        "304 keeps the ETag: {}",
        r.describe()
    );
    assert!(r.body.is_empty(), "304 has no body: {}", r.describe());
    assert!(r.header("x-amz-request-id").is_none(), "{}", r.describe());

    let r = send(
        proxy.main,
        "GET",
        "/s/cond.txt",
        &[("if-match", "\"other\"")],
    )
    .await;
    assert_eq!(r.status, 412, "{}", r.describe());
    assert!(!r.text().contains(SCRIPTED_REQUEST_ID), "{}", r.describe());

    let r = send(
        proxy.main,
        "GET",
        "/s/cond.txt",
        &[("if-unmodified-since", "Wed, 21 Oct 2015 07:28:00 GMT")],
    )
    .await;
    assert_eq!(r.status, 412, "{}", r.describe());

    let r = send(proxy.main, "GET", "/s/cond.txt", &[]).await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"version one");

    let r = send(
        proxy.main,
        "GET",
        "/s/partial.txt",
        &[("range", "bytes=0-3")],
    )
    .await;
    assert_eq!(r.status, 206, "{}", r.describe());
    assert_eq!(r.header("content-range"), Some("bytes 0-3/10"));
    assert_eq!(r.body.as_ref(), b"0123");

    let seen = up.requests_for("cond.txt");
    assert!(
        seen.iter()
            .any(|s| s.header("if-none-match") == Some("\"v1\"")),
        "If-None-Match must be forwarded: {seen:?}"
    );
    assert!(
        seen.iter()
            .any(|s| s.header("if-match") == Some("\"other\"")),
        "If-Match must be forwarded: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_mid_stream_closes_upstream() {
    let up = ScriptedUpstream::start(|req| {
        if req.path().ends_with("/endless.bin") {
            Reply::new(200)
                .header("Content-Type", "application/octet-stream")
                .endless()
        } else {
            Reply::new(200)
        }
    })
    .await;
    let proxy = proxy_for(&up, 30).await;

    let mut dl = Download::start(proxy.main, "/s/endless.bin", &[]).await;
    assert_eq!(dl.status, 200);
    let got = dl
        .read_at_least(2 << 20, |_| {})
        .await
        .expect("streaming must start");
    assert!(
        got >= 2 << 20,
        "only {got} bytes before the end of the body"
    );
    assert_eq!(
        up.aborted_bodies(),
        0,
        "upstream body aborted before the client left"
    );
    drop(dl);

    assert!(
        up.wait_body_aborted(DEADLINE).await,
        "the proxy kept reading from the upstream for {DEADLINE:?} after the client disconnected"
    );

    // The access log records the request as not completed.
    let (_, ev) = proxy
        .wait_for_log(0, "access log of the aborted download", DEADLINE, |v| {
            log_field(v, "target").and_then(|t| t.as_str()) == Some("access")
                && log_field(v, "path").and_then(|p| p.as_str()) == Some("/s/endless.bin")
        })
        .await;
    assert_eq!(
        log_field(&ev, "completed").and_then(|c| c.as_bool()),
        Some(false),
        "an aborted download must be logged with completed=false: {ev}"
    );

    // The proxy still serves.
    let r = get(proxy.main, "/s/other.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
}

/// `request_timeout_seconds` bounds the wait for response headers only: a slow
/// body that takes longer in total must still arrive whole, and a slow but
/// in-time response head is fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_applies_to_headers_only() {
    let chunks: Vec<Vec<u8>> = (0..6u8).map(|i| vec![b'a' + i; 1000]).collect();
    let expected: Vec<u8> = chunks.concat();
    let up =
        ScriptedUpstream::start(
            move |req| match req.path().rsplit('/').next().unwrap_or("") {
                "slow-body.bin" => Reply::new(200)
                    .header("Content-Type", "application/octet-stream")
                    .paced(chunks.clone(), std::time::Duration::from_millis(350)),
                "slow-head.txt" => {
                    Reply::ok("late but in time").delayed(std::time::Duration::from_millis(300))
                }
                _ => Reply::new(200),
            },
        )
        .await;
    let proxy = proxy_for(&up, 1).await;

    let start = Instant::now();
    let r = get(proxy.main, "/s/slow-body.bin").await;
    let took = start.elapsed();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.body.as_ref() == expected.as_slice(),
        "slow body cut or altered: got {} of {} bytes (after {took:?})",
        r.body.len(),
        expected.len()
    );

    let r = get(proxy.main, "/s/slow-head.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body.as_ref(), b"late but in time");
}

/// `upstream.read_buffer_bytes` is the size of every read from S3, so it also
/// bounds S3's response head: a head that does not fit is a clean 502, and
/// the same head fits once the setting is larger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_buffer_bytes_bounds_each_read_from_s3() {
    let big_value = "m".repeat(20 * 1024);
    let body: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let expected = body.clone();
    let up =
        ScriptedUpstream::start(
            move |req| match req.path().rsplit('/').next().unwrap_or("") {
                "big-head.txt" => Reply::ok("fits").header("x-amz-meta-big", &big_value),
                _ => Reply::ok(body.clone()),
            },
        )
        .await;
    let mut cfg = config_for(&up);

    cfg.extra_yaml = "upstream:\n  read_buffer_bytes: 16384\n".to_owned();
    let small = Proxy::start(&cfg).await;
    let r = get(small.main, "/s/big-head.txt").await;
    assert_error(&r, 502, None);
    assert_no_internals(&r, up.addr().port());
    let r = get(small.main, "/s/object.bin").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.body == expected,
        "1 MiB in 16 KiB reads arrives byte for byte"
    );

    cfg.extra_yaml = "upstream:\n  read_buffer_bytes: 65536\n".to_owned();
    let larger = Proxy::start(&cfg).await;
    let r = get(larger.main, "/s/big-head.txt").await;
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("x-amz-meta-big").map(str::len), Some(20 * 1024));
}
