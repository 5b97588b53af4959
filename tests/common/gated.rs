//! An upstream whose responses stay in flight until the test releases them.
//!
//! Every answer is `200` with a 10-byte body: `held-` at once, then `done!`
//! once [`GatedUpstream::release`] was called (at once after that). It
//! counts the requests it received and those still in flight (a request is
//! in flight until its body ends or the proxy drops the connection).
//! Requests for a bucket itself (the readiness probe) are answered at once
//! and not counted. Not a signing check: use s3s-fs for that.
//!
//! Included by the tests that use it with `#[path = "common/gated.rs"]`.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::StreamBody;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The body every request gets.
pub(crate) const GATED_BODY: &str = "held-done!";

#[derive(Debug)]
struct State {
    paths: Mutex<Vec<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    open: watch::Sender<bool>,
}

/// Counts a request in flight until dropped (with its response body).
struct InFlight(Arc<State>);

impl InFlight {
    fn new(state: &Arc<State>) -> InFlight {
        let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        state.max_in_flight.fetch_max(now, Ordering::SeqCst);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The gated HTTP/1.1 upstream (see the module docs).
pub(crate) struct GatedUpstream {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl GatedUpstream {
    pub(crate) async fn start() -> GatedUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            paths: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            open: watch::Sender::new(false),
        });
        let accept_state = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = accept_state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, &request)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        GatedUpstream { addr, state, task }
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Lets every held body (and every later one) finish.
    pub(crate) fn release(&self) {
        self.state.open.send_replace(true);
    }

    /// The paths of every request received so far.
    pub(crate) fn paths(&self) -> Vec<String> {
        self.state.paths.lock().unwrap().clone()
    }

    /// Requests received whose path contains `needle`.
    pub(crate) fn received(&self, needle: &str) -> usize {
        self.paths().iter().filter(|p| p.contains(needle)).count()
    }

    /// Requests whose response body has not ended yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// The most requests ever in flight at once.
    pub(crate) fn max_in_flight(&self) -> usize {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }
}

impl Drop for GatedUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Chunks =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Frame<Bytes>, Infallible>> + Send>>;

/// `held-`, then `done!` once the gate is open; in flight until it ends.
///
/// A request for the bucket itself (the proxy's readiness probe) gets an
/// empty 200 at once and is not counted.
fn answer(state: &Arc<State>, request: &Request<Incoming>) -> Response<StreamBody<Chunks>> {
    let path = request.uri().path();
    if !path.trim_start_matches('/').contains('/') {
        let empty: Chunks = Box::pin(futures_util::stream::empty());
        return Response::new(StreamBody::new(empty));
    }
    state.paths.lock().unwrap().push(path.to_owned());
    let guard = InFlight::new(state);
    let open = state.open.subscribe();
    let stream = futures_util::stream::unfold(
        (0u8, open, Some(guard)),
        |(step, mut open, guard)| async move {
            match step {
                0 => Some((
                    Ok(Frame::data(Bytes::from_static(b"held-"))),
                    (1, open, guard),
                )),
                1 => {
                    let _ = open.wait_for(|open| *open).await;
                    Some((
                        Ok(Frame::data(Bytes::from_static(b"done!"))),
                        (2, open, None),
                    ))
                }
                _ => None,
            }
        },
    );
    let body: Chunks = Box::pin(stream);
    Response::builder()
        .header("content-length", GATED_BODY.len())
        .header("content-type", "application/octet-stream")
        .body(StreamBody::new(body))
        .unwrap()
}
