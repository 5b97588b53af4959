//! The main listener itself: HTTP/2 with prior knowledge (h2c) and the
//! slow-loris guard (a client that never finishes its headers is dropped).

mod common;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BKT: &str = "listener-bkt";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_prior_knowledge_serves_signed_objects() {
    let s3 = S3Server::start(&[BKT]).await;
    let data = pattern_bytes(300_000);
    s3.write_object(BKT, "h2/object.bin", &data);
    let proxy = Proxy::start(&Config::new(vec![BucketCfg::new("files", &s3, BKT)])).await;

    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let uri: http::Uri = format!("http://{}/files/h2/object.bin", proxy.main)
        .parse()
        .unwrap();
    let response = tokio::time::timeout(DEADLINE, client.get(uri))
        .await
        .expect("h2c answer within the deadline")
        .expect("h2c request");
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body.len(), data.len());
    assert!(body == data, "h2c body differs from the object");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let s3 = S3Server::start(&[BKT]).await;
    let yaml = Config::new(vec![BucketCfg::new("files", &s3, BKT)])
        .yaml()
        .replacen(
            "server:\n",
            "server:\n  header_read_timeout_seconds: 1\n",
            1,
        );
    let proxy = Proxy::start_yaml(&yaml, &[]).await;

    // Every listener (data, admin, metrics) has the guard.
    for addr in [proxy.main, proxy.admin, proxy.metrics] {
        assert_dropped_when_headers_never_finish(addr).await;
    }

    // A well-behaved client on a fresh connection is still served.
    let r = get(proxy.main, "/health").await;
    assert_eq!(r.status, 200, "{}", r.describe());
}

async fn assert_dropped_when_headers_never_finish(addr: std::net::SocketAddr) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /files/x HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        .await
        .unwrap();
    // The proxy must close the connection on its own; the deadline only bounds the test.
    let mut buf = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut buf)).await;
    let closed = matches!(read, Ok(Ok(_)) | Ok(Err(_)));
    assert!(
        closed,
        "the proxy kept a half-sent request open on {addr} past its header timeout"
    );
    let text = String::from_utf8_lossy(&buf);
    assert!(
        buf.is_empty() || text.starts_with("HTTP/1.1 408"),
        "unexpected answer to an unfinished request: {text}"
    );
}
