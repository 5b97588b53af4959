//! A bare hyper server that answers every request with the same static bytes.
//!
//! It exists as the ceiling for the cached-hit load benchmark
//! (`scripts/bench-load.sh`, step (f)): a cached 1 KiB GET through Yatagarasu
//! is compared with this server, which does nothing but answer, on the same
//! core with the same client. Everything Yatagarasu does on a memory hit
//! (routing, the middleware stack, the cache lookup, its headers and metrics)
//! is what separates the two numbers.
//!
//! It serves connections the way Yatagarasu's listener does: hyper-util's
//! auto builder (HTTP/1.1 and h2c) with the same HTTP/1 settings (keep-alive,
//! a 10 s header-read timeout, 64 KiB header buffer, at most 100 headers),
//! `TCP_NODELAY`, one task per connection, the same runtime choice (tokio's
//! current-thread scheduler on a single CPU, the multi-thread one sized from
//! the CPU affinity mask otherwise), and mimalloc as the allocator; that
//! part lives in `examples/support`, shared with `bare_forward`.
//! Every answer is `200 OK` with `Content-Type: application/octet-stream`,
//! `Content-Length` and the body, a `Bytes` cloned per response (no copy).
//!
//! ```text
//! cargo build --release --example bare_hyper
//! taskset -c 1 target/release/examples/bare_hyper 127.0.0.1:8081 path/to/1k.bin
//! taskset -c 1 target/release/examples/bare_hyper 127.0.0.1:8081 1024   # 1024 bytes of 'x'
//! curl -i http://127.0.0.1:8081/anything
//! ```
//!
//! The second argument is a file to serve or a number of bytes; it defaults
//! to 1024 bytes. The server runs until it is killed.

use std::error::Error;
use std::path::Path;

use bytes::Bytes;
use http::{HeaderValue, Response, header};
use http_body_util::Full;
use tokio::net::TcpListener;

mod support;

const USAGE: &str = "usage: bare_hyper ADDRESS [FILE | BYTES]  (e.g. 127.0.0.1:8081 1k.bin)";

/// The body: the file's contents, or `n` bytes of `x` when the argument is a number.
fn body_from(arg: Option<String>) -> Result<Bytes, Box<dyn Error>> {
    let Some(arg) = arg else {
        return Ok(Bytes::from(vec![b'x'; 1024]));
    };
    if let Ok(size) = arg.parse::<usize>() {
        return Ok(Bytes::from(vec![b'x'; size]));
    }
    std::fs::read(Path::new(&arg))
        .map(Bytes::from)
        .map_err(|e| format!("cannot read {arg}: {e}").into())
}

/// The answer: the shared body and its precomputed headers, cloned per request.
#[derive(Clone, Debug)]
struct Static {
    body: Bytes,
    length: HeaderValue,
}

impl Static {
    fn answer(&self) -> Response<Full<Bytes>> {
        let mut response = Response::new(Full::new(self.body.clone()));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(header::CONTENT_LENGTH, self.length.clone());
        response
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let address = support::address(args.next(), USAGE)?;
    let body = body_from(args.next())?;
    let answer = Static {
        length: HeaderValue::from(body.len()),
        body,
    };
    support::runtime()?.block_on(async move {
        let listener = TcpListener::bind(address).await?;
        eprintln!(
            "bare_hyper listening on {}, answering {} bytes",
            listener.local_addr()?,
            answer.body.len()
        );
        support::serve(listener, move |_request| {
            std::future::ready(Ok(answer.answer()))
        })
        .await;
        Ok(())
    })
}
