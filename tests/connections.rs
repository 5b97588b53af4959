//! Connection deadlines and caps on every listener: a client that sends
//! nothing, a partial request line or a bare HTTP/2 preface is closed after
//! `header_read_timeout_seconds`; idle keep-alive and HTTP/2 connections after
//! `idle_timeout_seconds` (never one with a download in flight); the admin and
//! metrics listeners have a cap; the main listener leaves file descriptors
//! for the others near the open-file limit; HTTP/2 advertises the configured
//! stream limit.
//!
//! Every "is closed" check reads until the proxy closes the socket; the
//! deadline only bounds the test.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The cap of the admin and metrics listeners (src/server/internal.rs).
const INTERNAL_MAX_CONNECTIONS: usize = 32;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// A proxy in front of a scripted upstream, with `server_keys` (2-space
/// indented) added to its `server:` section.
async fn start(upstream: &ScriptedUpstream, server_keys: &str) -> Proxy {
    let bucket = BucketCfg::at("files", &upstream.endpoint(), "bkt", "AK", "SK");
    let yaml = Config::new(vec![bucket]).yaml().replacen(
        "server:\n",
        &format!("server:\n{server_keys}"),
        1,
    );
    Proxy::start_yaml(&yaml, &[]).await
}

async fn upstream() -> ScriptedUpstream {
    ScriptedUpstream::start(|request| {
        if request.path().contains("endless") {
            Reply::ok(Vec::new()).endless()
        } else {
            Reply::ok("ok")
        }
    })
    .await
}

/// Reads until the proxy closes `stream` (EOF or reset); returns what it sent.
/// Panics if the connection is still open after [`DEADLINE`].
async fn wait_closed_by_proxy(stream: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(DEADLINE, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "{what}: the proxy kept the connection open for {DEADLINE:?}"
    );
    received
}

async fn connect_sending(addr: SocketAddr, bytes: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed() {
    let upstream = upstream().await;
    let proxy = start(&upstream, "  header_read_timeout_seconds: 1\n").await;

    let mut silent = connect_sending(proxy.main, b"").await;
    let received = wait_closed_by_proxy(&mut silent, "a silent connection").await;
    assert!(received.is_empty(), "answered {received:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_preface_or_a_bare_h2_preface_is_closed() {
    let upstream = upstream().await;
    let proxy = start(&upstream, "  header_read_timeout_seconds: 1\n").await;

    // `P` could still become `PRI * HTTP/2.0…` or `PUT …`: the version sniffing waits.
    let mut one_byte = connect_sending(proxy.main, b"P").await;
    // The preface alone opens an HTTP/2 connection that never has a stream.
    let mut preface = connect_sending(proxy.main, H2_PREFACE).await;
    wait_closed_by_proxy(&mut one_byte, "a connection that sent `P`").await;
    wait_closed_by_proxy(&mut preface, "a connection that sent only the h2 preface").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_do_not_lock_the_port_out() {
    let upstream = upstream().await;
    let proxy = start(
        &upstream,
        "  header_read_timeout_seconds: 1\n  max_connections: 3\n",
    )
    .await;

    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(connect_sending(proxy.main, b"").await);
    }
    // Waits in the accept queue until a slot frees up.
    let answer = try_send(proxy.main, "GET", "/health", &[], Bytes::new(), DEADLINE)
        .await
        .unwrap_or_else(|e| panic!("a client behind 3 silent connections: {e}"));
    assert_eq!(answer.status, 200, "{}", answer.describe());
    for stream in &mut silent {
        wait_closed_by_proxy(stream, "a silent connection holding a slot").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_metrics_listeners_have_a_cap_and_the_deadline() {
    let upstream = upstream().await;
    let proxy = start(&upstream, "  header_read_timeout_seconds: 1\n").await;

    for (listener, addr) in [("metrics", proxy.metrics), ("admin", proxy.admin)] {
        let from = proxy.log_len();
        let mut silent = Vec::new();
        // The cap, and one more that waits for a slot.
        for _ in 0..=INTERNAL_MAX_CONNECTIONS {
            silent.push(connect_sending(addr, b"").await);
        }
        proxy
            .wait_for_log(from, "connection limit reached", DEADLINE, |event| {
                log_message(event)
                    == Some("connection limit reached; new connections wait in the accept queue")
                    && log_field(event, "listener").and_then(Value::as_str) == Some(listener)
                    && log_field(event, "limit").and_then(Value::as_u64)
                        == Some(INTERNAL_MAX_CONNECTIONS as u64)
            })
            .await;
        for stream in &mut silent {
            wait_closed_by_proxy(stream, &format!("a silent connection to {listener}")).await;
        }
    }
    let metrics = get(proxy.metrics, "/metrics").await;
    assert_eq!(metrics.status, 200, "{}", metrics.describe());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_but_a_download_is_not() {
    let upstream = upstream().await;
    // The header timeout is longer than the test: only the idle timeout can close.
    let proxy = start(
        &upstream,
        "  header_read_timeout_seconds: 120\n  idle_timeout_seconds: 1\n",
    )
    .await;

    let mut download = Download::start(proxy.main, "/files/endless.bin", &[]).await;
    assert_eq!(download.status, 200);
    download.read_at_least(1, |_| {}).await.unwrap();

    // A keep-alive connection: one request, then nothing.
    let stream = TcpStream::connect(proxy.main).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get("/health")
        .header("host", "proxy")
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    let closed = tokio::time::timeout(DEADLINE, connection).await;
    assert!(
        closed.is_ok(),
        "an idle keep-alive connection was kept open for {DEADLINE:?}"
    );

    // The download, in flight for longer than the idle timeout, still flows:
    // far more than any socket buffers could hold arrives after that close.
    let before = download.received;
    let after = download
        .read_at_least(before + 32 * 1024 * 1024, |_| {})
        .await
        .unwrap_or_else(|e| panic!("the download was cut: {e}"));
    assert!(after >= before + 32 * 1024 * 1024);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_h2_connection_is_closed() {
    let upstream = upstream().await;
    let proxy = start(
        &upstream,
        "  header_read_timeout_seconds: 120\n  idle_timeout_seconds: 1\n",
    )
    .await;

    let stream = TcpStream::connect(proxy.main).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake::<_, _, Empty<Bytes>>(
        TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/health", proxy.main))
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.unwrap();
    let closed = tokio::time::timeout(DEADLINE, connection).await;
    assert!(
        closed.is_ok(),
        "an idle HTTP/2 connection was kept open for {DEADLINE:?}"
    );
}

/// The SETTINGS_MAX_CONCURRENT_STREAMS the proxy announces in its first frame.
async fn announced_stream_limit(addr: SocketAddr) -> Option<u32> {
    // Preface, then an empty SETTINGS frame.
    let mut hello = H2_PREFACE.to_vec();
    hello.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let mut stream = connect_sending(addr, &hello).await;
    let mut header = [0u8; 9];
    tokio::time::timeout(DEADLINE, stream.read_exact(&mut header))
        .await
        .expect("the server's SETTINGS within the deadline")
        .unwrap();
    assert_eq!(header[3], 4, "the first frame is SETTINGS: {header:?}");
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0u8; len];
    stream.read_exact(&mut payload).await.unwrap();
    payload.chunks_exact(6).find_map(|setting| {
        (setting[..2] == [0, 3])
            .then(|| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_announces_the_configured_stream_limit() {
    let upstream = upstream().await;
    let proxy = start(&upstream, "").await;
    assert_eq!(announced_stream_limit(proxy.main).await, Some(100));
    drop(proxy);

    let proxy = start(&upstream, "  http2_max_concurrent_streams: 7\n").await;
    assert_eq!(announced_stream_limit(proxy.main).await, Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn near_the_open_file_limit_the_main_listener_leaves_descriptors_for_metrics() {
    use rustix::process::{Pid, Resource, Rlimit, prlimit};

    let upstream = upstream().await;
    // Silent connections stay open for the whole test.
    let proxy = start(&upstream, "  header_read_timeout_seconds: 120\n").await;
    let pid = Pid::from_raw(i32::try_from(proxy.pid()).unwrap()).unwrap();
    let limit = Rlimit {
        current: Some(128),
        maximum: Some(128),
    };
    prlimit(Some(pid), Resource::Nofile, limit).unwrap();

    let from = proxy.log_len();
    let mut silent = Vec::new();
    for _ in 0..160 {
        silent.push(connect_sending(proxy.main, b"").await);
    }
    proxy
        .wait_for_log(from, "refusing connections", DEADLINE, |event| {
            log_message(event)
                == Some(
                    "refusing connections: too few file descriptors left under the open-file limit",
                )
                && log_field(event, "listener").and_then(Value::as_str) == Some("main")
        })
        .await;
    let metrics = try_send(
        proxy.metrics,
        "GET",
        "/metrics",
        &[],
        Bytes::new(),
        DEADLINE,
    )
    .await
    .unwrap_or_else(|e| panic!("metrics with the main listener full: {e}"));
    assert_eq!(metrics.status, 200, "{}", metrics.describe());

    // Once the silent clients go, the main listener serves again.
    drop(silent);
    eventually("GET /health after the flood", DEADLINE, || async {
        match try_send(proxy.main, "GET", "/health", &[], Bytes::new(), DEADLINE).await {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(r.describe()),
            Err(e) => Err(e),
        }
    })
    .await;
}
