//! The audit log against real receivers: the file (records, claims, no
//! token or secret, reopen on SIGHUP, flush on SIGTERM, size rotation), a
//! full queue counting drops, syslog over UDP and TCP (RFC 5424, octet
//! counting, reconnect), and the S3 export into s3s-fs.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::jwks::{SECRET, claims, sign};
use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

const BKT: &str = "audited";

fn audit_yaml(body: &str) -> String {
    format!("audit_log:\n  enabled: true\n{body}")
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

async fn private_bucket(s3: &S3Server) -> BucketCfg {
    s3.write_object(BKT, "doc.txt", b"twelve bytes");
    let mut bucket = BucketCfg::new("docs", s3, BKT);
    bucket.extra_yaml = format!(
        "    auth:\n      enabled: true\n      jwt:\n        algorithm: HS256\n        secret: {}\n",
        q(SECRET)
    );
    bucket
}

fn config(bucket: BucketCfg, audit: &str) -> Config {
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.extra_yaml = audit_yaml(audit);
    cfg
}

/// A configuration whose one bucket is never asked (requests go to `/nowhere`).
fn unrouted(audit: &str) -> Config {
    let bucket = BucketCfg::at("b", "http://127.0.0.1:9", "unused", "ak", "sk");
    config(bucket, audit)
}

fn by_request(records: &[Value], id: &str) -> Value {
    records
        .iter()
        .find(|r| r["request_id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no record for {id} in {records:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_holds_one_record_per_request_reopens_on_sighup_and_is_flushed_on_sigterm() {
    let s3 = S3Server::start(&[BKT]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let audit = format!(
        "  outputs: [file]\n  include_claims: [email]\n  file:\n    path: {}\n",
        q(path.to_str().unwrap())
    );
    let mut proxy = Proxy::start(&config(private_bucket(&s3).await, &audit)).await;
    let token = sign(
        jsonwebtoken::Algorithm::HS256,
        "",
        None,
        &claims(serde_json::json!({"email": "u42@example.com", "role": "x"})),
    );
    let bearer = format!("Bearer {token}");
    let ok = send(
        proxy.main,
        "GET",
        "/docs/doc.txt?x-id=1",
        &[
            ("authorization", &bearer),
            ("user-agent", "audit-test/1.0"),
            ("referer", "https://app.example.com/page"),
            ("x-correlation-id", "chain-7"),
            ("x-request-id", "req-ok"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.describe());
    let long = "c".repeat(200);
    let refused = send(
        proxy.main,
        "GET",
        "/docs/doc.txt",
        &[("x-request-id", "req-401"), ("x-correlation-id", &long)],
    )
    .await;
    assert_eq!(refused.status, 401);
    let missing = send(
        proxy.main,
        "GET",
        "/nowhere/x",
        &[("x-request-id", "req-404")],
    )
    .await;
    assert_eq!(missing.status, 404);

    let all = eventually("three records", DEADLINE, || {
        let all = records(&path);
        async move {
            if all.len() >= 3 {
                Ok(all)
            } else {
                Err(format!("{all:?}"))
            }
        }
    })
    .await;
    let ok = by_request(&all, "req-ok");
    assert_eq!(ok["correlation_id"], "chain-7");
    assert_eq!(ok["client_ip"], "127.0.0.1");
    assert_eq!(ok["user"], "user-42");
    assert_eq!(
        ok["claims"],
        serde_json::json!({"email": "u42@example.com"})
    );
    assert_eq!(ok["bucket"], "docs");
    assert_eq!(ok["object_key"], "doc.txt");
    assert_eq!(ok["http_method"], "GET");
    assert_eq!(ok["request_path"], "/docs/doc.txt");
    assert_eq!(ok["response_status"], 200);
    assert_eq!(ok["response_size_bytes"], 12);
    assert_eq!(ok["completed"], true);
    assert_eq!(ok["cache_status"], Value::Null);
    assert_eq!(ok["user_agent"], "audit-test/1.0");
    assert_eq!(ok["referer"], "https://app.example.com/page");
    assert_eq!(ok["level"], "info");
    assert!(ok["duration_ms"].as_f64().unwrap() >= 0.0);
    let stamp = ok["timestamp"].as_str().unwrap();
    assert!(
        stamp.len() == 24 && stamp.ends_with('Z') && &stamp[10..11] == "T",
        "{stamp}"
    );

    let refused = by_request(&all, "req-401");
    assert_eq!(refused["response_status"], 401);
    assert_eq!(refused["level"], "warn");
    assert_eq!(refused["error_code"], "Unauthorized");
    assert!(
        refused["denial_reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    assert_eq!(refused["bucket"], "docs");
    assert!(
        refused.get("correlation_id").is_none(),
        "an insane id is not kept"
    );
    assert!(refused.get("user").is_none());

    let missing = by_request(&all, "req-404");
    assert_eq!(missing["error_code"], "NoSuchRoute");
    assert!(missing.get("bucket").is_none());
    assert!(missing.get("denial_reason").is_none());

    // An external logrotate moves the file, then sends SIGHUP.
    let moved = dir.path().join("audit.jsonl.rotated");
    std::fs::rename(&path, &moved).unwrap();
    let from = proxy.log_len();
    proxy.signal("HUP");
    proxy.wait_for_message(from, "configuration reloaded").await;
    let after = send(
        proxy.main,
        "GET",
        "/docs/doc.txt",
        &[("authorization", &bearer), ("x-request-id", "req-after")],
    )
    .await;
    assert_eq!(after.status, 200);
    // SIGTERM: what was queued is written before the process exits.
    proxy.signal("TERM");
    assert!(proxy.wait_exit(DEADLINE).await.success());
    let fresh = records(&path);
    assert_eq!(fresh.len(), 1, "{fresh:?}");
    assert_eq!(fresh[0]["request_id"], "req-after");
    assert_eq!(records(&moved).len(), 3);

    let text = std::fs::read_to_string(&moved).unwrap() + &std::fs::read_to_string(&path).unwrap();
    for secret in [token.as_str(), SECRET, &s3.secret_key, "x-id=1", "role"] {
        assert!(!text.contains(secret), "the audit log holds {secret}");
    }
}

async fn in_process(yaml: &str) -> yatagarasu::Proxy {
    let config = yatagarasu::Config::from_yaml_str(yaml).unwrap();
    yatagarasu::Proxy::builder(config).build().unwrap()
}

async fn oneshot(proxy: &yatagarasu::Proxy, path: &str, agent: &str) -> u16 {
    use tower::ServiceExt;
    let mut request = http::Request::get(path)
        .header("user-agent", agent)
        .body(())
        .unwrap();
    request
        .extensions_mut()
        .insert(yatagarasu::access_log::ClientAddr(SocketAddr::from((
            [127, 0, 0, 1],
            4000,
        ))));
    let Ok(response) = proxy.clone().oneshot(request).await;
    let status = response.status().as_u16();
    http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap();
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_rotation_keeps_whole_records_and_the_backup_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let yaml = format!(
        "buckets: [{{name: b, path_prefix: /b, s3: {{bucket: unused, region: us-east-1, \
         anonymous: true}}}}]\nlogging: {{level: error}}\n{}",
        audit_yaml(&format!(
            "  outputs: [file]\n  file:\n    path: {}\n    max_file_size_mb: 1\n    \
             max_backup_files: 2\n    rotation_policy: size\n    buffer_size: 100000\n",
            q(path.to_str().unwrap())
        ))
    );
    let proxy = in_process(&yaml).await;
    let agent = "a".repeat(500);
    // About 800 bytes a record: 4000 of them fill more than three files.
    for _ in 0..4000 {
        assert_eq!(oneshot(&proxy, "/nowhere/key", &agent).await, 404);
    }
    proxy.flush_audit_log().await;
    let backup = |n: usize| dir.path().join(format!("audit.jsonl.{n}"));
    assert!(!backup(3).exists(), "only two rotated files are kept");
    for file in [path.clone(), backup(1), backup(2)] {
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(size > 0 && size <= 1 << 20, "{file:?}: {size} bytes");
        let parsed = records(&file);
        assert!(parsed.iter().all(|r| r["response_status"] == 404));
    }
    assert!(records(&backup(2)).len() > 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_records_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("audit.fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // A reader that opens the pipe and reads nothing until the end: the
    // writer blocks once the pipe is full, and the queue fills behind it.
    let (opened_tx, opened_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let reader_path = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut pipe = std::fs::File::open(reader_path).unwrap();
        opened_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        let mut text = String::new();
        pipe.read_to_string(&mut text).unwrap();
        text.lines().count()
    });
    let cfg = unrouted(&format!(
        "  outputs: [file]\n  file:\n    path: {}\n    buffer_size: 10\n",
        q(fifo.to_str().unwrap())
    ));
    let mut proxy = Proxy::start(&cfg).await;
    opened_rx.recv().unwrap();
    let agent = "b".repeat(400);
    const REQUESTS: usize = 1500;
    for _ in 0..REQUESTS {
        let r = send(proxy.main, "GET", "/nowhere/k", &[("user-agent", &agent)]).await;
        assert_eq!(r.status, 404);
    }
    let (_, samples) = scrape(&proxy).await;
    let dropped = sample_value(
        &samples,
        "yatagarasu_audit_dropped_total",
        &[("output", "file")],
    )
    .unwrap_or(0.0) as usize;
    // Pipe (64 KiB) + write buffer (64 KiB) + queue hold a few hundred records at most.
    assert!(dropped > REQUESTS / 2, "dropped {dropped}");
    go_tx.send(()).unwrap();
    proxy.signal("TERM");
    assert!(proxy.wait_exit(DEADLINE).await.success());
    let written = reader.join().unwrap();
    assert_eq!(
        written + dropped,
        REQUESTS,
        "every record is written or counted"
    );
}

async fn syslog_proxy(protocol: &str, address: SocketAddr) -> Proxy {
    let cfg = unrouted(&format!(
        "  outputs: [syslog]\n  syslog:\n    address: \"{address}\"\n    protocol: {protocol}\n    \
         facility: local3\n"
    ));
    Proxy::start(&cfg).await
}

/// The JSON of an RFC 5424 message from this proxy, checking its header.
fn syslog_json(message: &str, pri: u16) -> Value {
    let prefix = format!("<{pri}>1 ");
    assert!(message.starts_with(&prefix), "{message}");
    let fields: Vec<&str> = message.splitn(8, ' ').collect();
    assert_eq!(fields.len(), 8, "{message}");
    assert!(fields[1].ends_with('Z'));
    assert_eq!(
        (fields[3], fields[5], fields[6]),
        ("yatagarasu", "audit", "-")
    );
    serde_json::from_str(fields[7]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_udp_sends_one_rfc5424_message_per_record() {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let proxy = syslog_proxy("udp", socket.local_addr().unwrap()).await;
    let r = send(
        proxy.main,
        "GET",
        "/nowhere/k",
        &[("x-request-id", "udp-1")],
    )
    .await;
    assert_eq!(r.status, 404);
    let mut buf = vec![0; 65_536];
    let n = tokio::time::timeout(DEADLINE, socket.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    // local3 (19) * 8 + info (6).
    let record = syslog_json(std::str::from_utf8(&buf[..n]).unwrap(), 158);
    assert_eq!(record["request_id"], "udp-1");
    assert_eq!(record["response_status"], 404);
}

async fn read_frame(stream: &mut BufReader<tokio::net::TcpStream>) -> std::io::Result<String> {
    let mut count = Vec::new();
    stream.read_until(b' ', &mut count).await?;
    let len: usize = std::str::from_utf8(&count[..count.len().saturating_sub(1)])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no octet count"))?;
    let mut message = vec![0; len];
    stream.read_exact(&mut message).await?;
    Ok(String::from_utf8(message).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_over_tcp_uses_octet_counting_and_reconnects() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = syslog_proxy("tcp", listener.local_addr().unwrap()).await;
    for id in ["tcp-1", "tcp-2"] {
        send(proxy.main, "GET", "/nowhere/k", &[("x-request-id", id)]).await;
    }
    let (stream, _) = tokio::time::timeout(DEADLINE, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut stream = BufReader::new(stream);
    for id in ["tcp-1", "tcp-2"] {
        let record = syslog_json(&read_frame(&mut stream).await.unwrap(), 158);
        assert_eq!(record["request_id"], id);
    }
    // The receiver goes away; the proxy connects again and goes on.
    drop(stream);
    let resend = async {
        loop {
            send(
                proxy.main,
                "GET",
                "/nowhere/k",
                &[("x-request-id", "tcp-again")],
            )
            .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (stream, _) = tokio::select! {
        accepted = listener.accept() => accepted.unwrap(),
        () = resend => unreachable!(),
        () = tokio::time::sleep(DEADLINE) => panic!("no reconnection"),
    };
    let record = syslog_json(&read_frame(&mut BufReader::new(stream)).await.unwrap(), 158);
    assert_eq!(record["request_id"], "tcp-again");
}

const AUDIT_BKT: &str = "audit-logs";

fn s3_proxy_config(s3: &S3Server, interval: u64) -> Config {
    unrouted(&format!(
        "  outputs: [s3]\n  s3_export:\n    bucket: {AUDIT_BKT}\n    region: {REGION}\n    \
         path_prefix: yatagarasu/\n    export_interval_seconds: {interval}\n    endpoint: {}\n    \
         access_key: {}\n    secret_key: {}\n",
        q(&s3.endpoint()),
        q(&s3.access_key),
        q(&s3.secret_key)
    ))
}

/// Every record of every exported object, and the object names.
fn exported(s3: &S3Server) -> (Vec<String>, Vec<Value>) {
    let root = s3.root().join(AUDIT_BKT).join("yatagarasu");
    let (mut names, mut all) = (Vec::new(), Vec::new());
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "jsonl") {
                names.push(
                    path.strip_prefix(&root)
                        .unwrap()
                        .to_str()
                        .unwrap()
                        .to_owned(),
                );
                all.extend(records(&path));
            }
        }
    }
    (names, all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_export_uploads_signed_batches_while_running() {
    let s3 = S3Server::start(&[AUDIT_BKT]).await;
    let proxy = Proxy::start(&s3_proxy_config(&s3, 1)).await;
    let ids: Vec<String> = (0..5).map(|i| format!("s3-run-{i}")).collect();
    for id in &ids {
        send(proxy.main, "GET", "/nowhere/k", &[("x-request-id", id)]).await;
    }
    let (names, all) = eventually("every record exported", DEADLINE, || {
        let (names, all) = exported(&s3);
        let found = ids
            .iter()
            .all(|id| all.iter().any(|r| r["request_id"] == id.as_str()));
        async move {
            if found {
                Ok((names, all))
            } else {
                Err(format!("{all:?}"))
            }
        }
    })
    .await;
    assert!(!all.is_empty());
    let name = &names[0];
    // YYYY/MM/DD/<stamp>-<instance>-<n>.jsonl
    assert!(
        name.len() > 20 && name[..4].parse::<u32>().is_ok() && name.ends_with(".jsonl"),
        "{name}"
    );
    assert!(name.contains(&format!("-{}-", proxy.pid())), "{name}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_uploads_the_last_batch() {
    let s3 = S3Server::start(&[AUDIT_BKT]).await;
    let mut proxy = Proxy::start(&s3_proxy_config(&s3, 3600)).await;
    let ids: Vec<String> = (0..20).map(|i| format!("s3-stop-{i}")).collect();
    for id in &ids {
        send(proxy.main, "GET", "/nowhere/k", &[("x-request-id", id)]).await;
    }
    assert!(
        exported(&s3).1.is_empty(),
        "nothing is uploaded before the interval"
    );
    proxy.signal("TERM");
    assert!(proxy.wait_exit(DEADLINE).await.success());
    let (names, all) = exported(&s3);
    assert_eq!(names.len(), 1, "{names:?}");
    for id in &ids {
        assert!(
            all.iter().any(|r| r["request_id"] == id.as_str()),
            "{id} missing"
        );
    }
}
