//! What the two baseline servers (`bare_hyper`, `bare_forward`) share with
//! Yatagarasu's listener, so that a load-test comparison against them is about
//! the work done per request and nothing else.
//!
//! Not an example of its own: Cargo only builds `examples/*.rs` and
//! `examples/*/main.rs`.

use std::error::Error;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;

/// The same allocator as the `yatagarasu` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The connection builder with the HTTP settings of Yatagarasu's listener
/// (`src/server/listener.rs`) at their default values.
fn connection_builder() -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(65_536)
        .max_headers(100);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(65_536)
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)));
    builder
}

/// The listening address from the first argument, or the usage line.
pub(crate) fn address(arg: Option<String>, usage: &str) -> Result<SocketAddr, Box<dyn Error>> {
    let arg = arg.ok_or(usage)?;
    arg.parse()
        .map_err(|e| format!("bad address {arg:?}: {e}\n{usage}").into())
}

/// The runtime Yatagarasu picks: tokio's current-thread scheduler on a single
/// CPU (e.g. under `taskset -c 1`), the multi-thread one otherwise.
pub(crate) fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let single_cpu = std::thread::available_parallelism().is_ok_and(|n| n.get() == 1);
    if single_cpu {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    }
    .enable_all()
    .build()
}

/// Accepts connections forever and serves each on its own task, with
/// `TCP_NODELAY`, as Yatagarasu's listener does. `answer` handles one
/// request; an error closes that connection.
pub(crate) async fn serve<F, Fut, B>(listener: TcpListener, answer: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Response<B>, Box<dyn Error + Send + Sync>>> + Send + 'static,
    B: Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn Error + Send + Sync>>,
{
    let builder = connection_builder();
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(error) => {
                // EMFILE and friends: back off briefly instead of spinning.
                eprintln!("accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection(TokioIo::new(stream), service_fn(answer.clone()))
            .into_owned();
        tokio::spawn(async move {
            // Clients closing mid-request are expected under load; nothing to report.
            let _ = connection.await;
        });
    }
}
