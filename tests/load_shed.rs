//! `server.max_concurrent_requests` against the real binary: beyond the
//! limit a request gets 503 with `Retry-After: 1` at once, a download holds
//! its slot until its body is done, probes are never shed, and slots come
//! back when the downloads end. Over HTTP/2 it counts streams, not
//! connections: thousands of stuck streams reach S3 at most
//! `max_concurrent_requests` times and the proxy's memory stays bounded.

mod common;
#[path = "common/gated.rs"]
mod gated;

use std::net::SocketAddr;

use bytes::Bytes;
use common::*;
use gated::GatedUpstream;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Counts `yatagarasu_load_shed_total` on the metrics listener.
async fn shed_total(proxy: &Proxy) -> f64 {
    let text = send(proxy.metrics, "GET", "/metrics", &[]).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix("yatagarasu_load_shed_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_limit_are_shed_until_downloads_end() {
    // Every object is an endless download: each holds its slot until dropped.
    let upstream = ScriptedUpstream::start(|_| Reply::ok(Vec::new()).endless()).await;
    let bucket = BucketCfg::at(
        "shed",
        &upstream.endpoint(),
        "shed-bkt",
        ACCESS_KEY,
        SECRET_KEY,
    );
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    cfg.server_extra_yaml = "  max_concurrent_requests: 2\n".to_owned();
    let proxy = Proxy::start(&cfg).await;

    let mut first = Download::start(proxy.main, "/shed/one", &[]).await;
    let second = Download::start(proxy.main, "/shed/two", &[]).await;
    assert_eq!((first.status, second.status), (200, 200));
    // Bytes keep flowing: the slot is held while the body is sent.
    first.read_at_least(1, |_| {}).await.unwrap();

    let shed = get(proxy.main, "/shed/three").await;
    assert_eq!(shed.status, 503, "{}", shed.describe());
    assert_eq!(shed.header("retry-after"), Some("1"));
    let v = shed.json();
    assert_eq!(v["error"]["code"], "Overloaded", "{v}");
    assert_eq!(
        v["error"]["request_id"].as_str(),
        shed.header("x-request-id")
    );
    assert_eq!(
        upstream.requests_for("three").len(),
        0,
        "a shed request never reaches S3"
    );
    assert_eq!(
        get(proxy.main, "/health").await.status,
        200,
        "probes are never shed"
    );
    assert_eq!(shed_total(&proxy).await, 1.0);

    drop(first);
    drop(second);
    let again = eventually("a slot comes back", DEADLINE, || async {
        let d = Download::start(proxy.main, "/shed/four", &[]).await;
        if d.status == 200 {
            Ok(d)
        } else {
            Err(format!("status {}", d.status))
        }
    })
    .await;
    assert_eq!(again.status, 200);
}

/// One h2c connection whose streams can never receive body bytes.
struct StuckH2 {
    /// The response heads, bodies unread (every stream stays open).
    responses: Vec<http::Response<Incoming>>,
    connection: JoinHandle<()>,
}

impl Drop for StuckH2 {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

/// Opens a prior-knowledge HTTP/2 connection announcing a zero stream
/// window, sends `streams` GETs at once and waits for every response head.
async fn stuck_h2_connection(proxy: SocketAddr, id: usize, streams: usize) -> StuckH2 {
    let stream = TcpStream::connect(proxy).await.unwrap();
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        // No DATA frame may be sent on any stream: every body is stuck.
        .initial_stream_window_size(0)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .unwrap();
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let sends = (0..streams).map(|i| {
        let mut sender = sender.clone();
        let request = http::Request::get(format!("http://{proxy}/h2/c{id}-s{i}"))
            .body(Empty::new())
            .unwrap();
        async move { sender.send_request(request).await }
    });
    let heads = tokio::time::timeout(DEADLINE, futures_util::future::join_all(sends))
        .await
        .expect("every response head within the deadline");
    let responses = heads
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("stream of connection {id}: {e}")))
        .collect();
    StuckH2 {
        responses,
        connection,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stuck_http2_streams_are_shed_and_memory_stays_bounded() {
    const CONNECTIONS: usize = 16;
    const STREAMS: usize = 256;
    const LIMIT: usize = 32;
    let upstream = GatedUpstream::start().await;
    let bucket = BucketCfg::at("h2", &upstream.endpoint(), "h2-bkt", ACCESS_KEY, SECRET_KEY);
    let mut cfg = Config::new(vec![bucket]);
    cfg.readiness_probe_interval_seconds = 3600;
    // Each connection may open all its streams at once: under the default
    // stream limit (100) the client would queue the rest itself, and the
    // proxy would never see more than 1,600 streams.
    cfg.server_extra_yaml =
        format!("  max_concurrent_requests: {LIMIT}\n  http2_max_concurrent_streams: {STREAMS}\n");
    let proxy = Proxy::start(&cfg).await;
    assert_eq!(get(proxy.main, "/health").await.status, 200);
    let rss_before = proxy.proc_status_kib("VmRSS");

    let opened = (0..CONNECTIONS).map(|id| stuck_h2_connection(proxy.main, id, STREAMS));
    let connections = futures_util::future::join_all(opened).await;
    let heads = || connections.iter().flat_map(|c| &c.responses);
    let served = heads().filter(|r| r.status() == 200).count();
    let shed: Vec<_> = heads().filter(|r| r.status() == 503).collect();
    assert_eq!(
        served + shed.len(),
        CONNECTIONS * STREAMS,
        "only 200 or 503"
    );
    assert!(served <= LIMIT, "{served} streams served at once");
    assert!(shed.iter().all(|r| r.headers()["retry-after"] == "1"));
    assert_eq!(shed_total(&proxy).await, shed.len() as f64);
    let reached = upstream.paths().len();
    assert!(reached <= LIMIT, "{reached} requests reached the upstream");
    assert!(upstream.max_in_flight() <= LIMIT);
    let rss_after = proxy.proc_status_kib("VmRSS");
    let grown_mib = rss_after.saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 100,
        "RSS grew by {grown_mib} MiB ({rss_before} -> {rss_after} KiB)"
    );
    println!(
        "{} streams: {served} served, {} shed, {reached} upstream requests \
         (at most {} at once), RSS {rss_before} -> {rss_after} KiB",
        CONNECTIONS * STREAMS,
        shed.len(),
        upstream.max_in_flight(),
    );

    // Closing the connections ends the stuck bodies and frees their slots.
    drop(connections);
    upstream.release();
    eventually("the slots come back", DEADLINE, || async {
        match get(proxy.main, "/h2/after").await.status {
            200 => Ok(()),
            status => Err(format!("status {status}")),
        }
    })
    .await;
}
