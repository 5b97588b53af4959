//! A reload runs off the threads that serve requests: while it waits on a
//! slow configuration read, requests keep being answered.
//!
//! The configuration file is replaced by a FIFO, so the reload's read blocks
//! until the test writes the new configuration, which it does only once a
//! proxied request (and an admin status request) has completed while the
//! reload was pending. With `worker_threads: 1` the proxy runs tokio's
//! current-thread scheduler, so a reload on that thread would stop every
//! connection until the file arrived.

mod common;

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use bytes::Bytes;
use common::*;
use serde_json::Value;
use tokio::sync::oneshot;

const BKT: &str = "reload-bkt";
const ADMIN_HEADER: (&str, &str) = ("x-yatagarasu-admin", "1");

/// A one-thread proxy over one bucket holding `a.txt`, and its configuration.
async fn start(s3: &S3Server) -> (Proxy, Config) {
    s3.write_object(BKT, "a.txt", b"served during the reload");
    let mut cfg = Config::new(vec![BucketCfg::new("products", s3, BKT)]);
    cfg.worker_threads = Some(1);
    (Proxy::start(&cfg).await, cfg)
}

/// Puts a FIFO where the configuration file was, so the next reload's read
/// blocks until [`reload_pending`]'s writer writes.
fn replace_config_with_fifo(proxy: &Proxy) -> PathBuf {
    let path = proxy.config_path().to_owned();
    let fifo = path.with_extension("fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("cannot run mkfifo");
    assert!(status.success(), "mkfifo {}: {status}", fifo.display());
    std::fs::rename(&fifo, &path).unwrap();
    path
}

/// The FIFO's write end, opened on a plain thread: `open` returns only once
/// the proxy has opened the FIFO for reading, i.e. once a reload is under way
/// and blocked on its read.
fn reload_pending(fifo: PathBuf) -> oneshot::Receiver<File> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&fifo) {
            let _ = tx.send(file);
        }
    });
    rx
}

/// Requests sent while the reload waits for its file, then the file written
/// (whatever the requests did, so a failure leaves no proxy stuck).
async fn answers_while_pending(proxy: &Proxy, writer: oneshot::Receiver<File>, new_yaml: &str) {
    let mut file = tokio::time::timeout(DEADLINE, writer)
        .await
        .expect("the reload never opened the configuration file")
        .expect("cannot open the FIFO for writing");
    let object = try_send(
        proxy.main,
        "GET",
        "/products/a.txt",
        &[],
        Bytes::new(),
        DEADLINE,
    )
    .await;
    let status = try_send(
        proxy.admin,
        "GET",
        "/admin/status",
        &[],
        Bytes::new(),
        DEADLINE,
    )
    .await;
    file.write_all(new_yaml.as_bytes()).unwrap();
    drop(file);

    let object = object.unwrap_or_else(|e| panic!("no answer while the reload was pending: {e}"));
    assert_eq!(object.status, 200, "{}", object.describe());
    assert_eq!(object.body.as_ref(), b"served during the reload");
    let status = status.unwrap_or_else(|e| panic!("no admin answer during the reload: {e}"));
    assert_eq!(status.status, 200, "{}", status.describe());
    assert_eq!(
        status.json()["generation"],
        1,
        "the old generation serves while the reload is pending"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_while_an_admin_reload_reads_its_file() {
    let s3 = S3Server::start(&[BKT]).await;
    let (proxy, mut cfg) = start(&s3).await;
    let writer = reload_pending(replace_config_with_fifo(&proxy));
    let admin = proxy.admin;
    let reload = tokio::spawn(async move {
        send_with_body(
            admin,
            "POST",
            "/admin/reload",
            &[ADMIN_HEADER],
            Bytes::new(),
        )
        .await
    });

    cfg.buckets.push(BucketCfg::new("extra", &s3, BKT));
    answers_while_pending(&proxy, writer, &cfg.yaml()).await;

    let r = reload.await.unwrap();
    assert_eq!(r.status, 200, "reload: {}", r.describe());
    assert_eq!(r.json()["generation"], 2, "{}", r.describe());
    let r = get(proxy.main, "/extra/a.txt").await;
    assert_eq!(r.status, 200, "the new bucket serves: {}", r.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_answered_while_a_sighup_reload_reads_its_file() {
    let s3 = S3Server::start(&[BKT]).await;
    let (proxy, mut cfg) = start(&s3).await;
    let writer = reload_pending(replace_config_with_fifo(&proxy));
    let from = proxy.log_len();
    proxy.signal("HUP");

    cfg.buckets.push(BucketCfg::new("extra", &s3, BKT));
    answers_while_pending(&proxy, writer, &cfg.yaml()).await;

    let (_, event) = proxy.wait_for_message(from, "configuration reloaded").await;
    assert_eq!(
        log_field(&event, "generation").and_then(Value::as_u64),
        Some(2),
        "{event}"
    );
    let r = get(proxy.main, "/extra/a.txt").await;
    assert_eq!(r.status, 200, "the new bucket serves: {}", r.describe());
}
