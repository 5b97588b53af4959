//! A controllable upstream for fault tests: a small hyper HTTP/1.1 server in
//! the test process that answers object requests like S3 (fixed bytes, or
//! forwarded to a real s3s-fs) and can be told to fail in the ways S3 and
//! networks do.
//!
//! - [`Faulty::fail_next`]`(n, fault)`: the next `n` object requests get
//!   `fault`, then service is normal again; [`Faulty::fail_always`] until
//!   [`Faulty::heal`].
//! - [`Fault`]: 503 with no body, an S3 XML error (`SlowDown`, …), no answer
//!   at all, a connection broken after `n` body bytes, a late head, a
//!   trickling body.
//! - [`Faulty::refuse_connections`] closes the listener and every open
//!   connection (connects are refused); [`Faulty::accept_connections`]
//!   listens again on the same port.
//! - It counts what it received: [`Faulty::requests`] (object requests),
//!   [`Faulty::requests_for`] (those whose path contains a string),
//!   [`Faulty::all_requests`] (bucket-level probes included).
//!
//! Object requests are those whose path names a key (`/bucket/key`); the
//! proxy's readiness probes (`HEAD /bucket`) are always answered 200 and
//! never consume a fault.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

type Body = BoxBody<Bytes, std::io::Error>;

/// One way to fail an object request.
#[derive(Debug, Clone)]
pub(crate) enum Fault {
    /// 503 with an empty body (what a load balancer in front of S3 sends).
    Unavailable,
    /// An S3 XML error document with this status and code
    /// (`SlowDown`, `InternalError`, `AccessDenied`, `NoSuchKey`, …).
    S3Error(u16, &'static str),
    /// Read the request and never answer (the connection stays open).
    Hang,
    /// Send the head with the full `Content-Length` and `n` body bytes,
    /// then break the connection.
    ResetAfter(usize),
    /// Answer normally, after waiting this long before the head.
    Delay(Duration),
    /// Answer normally, with the body in `chunk`-byte pieces `interval` apart.
    Trickle { chunk: usize, interval: Duration },
}

impl Fault {
    /// S3's `503 SlowDown`.
    pub(crate) fn slow_down() -> Fault {
        Fault::S3Error(503, "SlowDown")
    }
}

/// What a normal answer is made of.
#[derive(Debug, Clone)]
enum Origin {
    /// The same bytes for every key, with `Content-Length` and `ETag`.
    Object(Bytes),
    /// The request as received (signature included), forwarded to this server.
    Forward(SocketAddr),
}

/// The controllable state, shared with the connection tasks.
struct State {
    origin: Origin,
    /// Faults for the next object requests, in order.
    queue: Mutex<VecDeque<Fault>>,
    /// The fault every object request gets once the queue is empty.
    always: Mutex<Option<Fault>>,
    objects: AtomicUsize,
    all: AtomicUsize,
    paths: Mutex<Vec<String>>,
    arrived: Notify,
    client: Client<HttpConnector, Incoming>,
}

/// The controllable upstream (see the module docs).
pub(crate) struct Faulty {
    addr: SocketAddr,
    state: Arc<State>,
    server: Mutex<Option<JoinHandle<()>>>,
}

/// The ETag of the fixed object bytes (a quoted hex length, stable per body).
pub(crate) fn etag_of(body: &[u8]) -> String {
    format!("\"{:032x}\"", body.len())
}

impl Faulty {
    /// Serves `body` for every object key.
    pub(crate) async fn object(body: impl Into<Bytes>) -> Faulty {
        Faulty::start(Origin::Object(body.into())).await
    }

    /// Forwards every request to `s3` (an s3s-fs server), signature and all.
    pub(crate) async fn forward_to(s3: SocketAddr) -> Faulty {
        Faulty::start(Origin::Forward(s3)).await
    }

    async fn start(origin: Origin) -> Faulty {
        let state = Arc::new(State {
            origin,
            queue: Mutex::default(),
            always: Mutex::default(),
            objects: AtomicUsize::new(0),
            all: AtomicUsize::new(0),
            paths: Mutex::default(),
            arrived: Notify::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        });
        let listener = listen("127.0.0.1:0".parse().unwrap());
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, state.clone()));
        Faulty {
            addr,
            state,
            server: Mutex::new(Some(server)),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` object requests get `fault` (after any already queued).
    pub(crate) fn fail_next(&self, n: usize, fault: Fault) {
        let mut queue = self.state.queue.lock().unwrap();
        queue.extend(std::iter::repeat_n(fault, n));
    }

    /// Every object request gets `fault` (once the queue is spent) until [`Faulty::heal`].
    pub(crate) fn fail_always(&self, fault: Fault) {
        *self.state.always.lock().unwrap() = Some(fault);
    }

    /// Normal service from now on: queued and standing faults are dropped.
    pub(crate) fn heal(&self) {
        self.state.queue.lock().unwrap().clear();
        *self.state.always.lock().unwrap() = None;
    }

    /// Object requests received so far.
    pub(crate) fn requests(&self) -> usize {
        self.state.objects.load(Ordering::SeqCst)
    }

    /// Object requests whose path contains `needle`.
    pub(crate) fn requests_for(&self, needle: &str) -> usize {
        let paths = self.state.paths.lock().unwrap();
        paths.iter().filter(|p| p.contains(needle)).count()
    }

    /// Every request received, bucket-level probes included.
    pub(crate) fn all_requests(&self) -> usize {
        self.state.all.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` object requests arrived; false after `timeout`.
    pub(crate) async fn wait_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.state.arrived.notified();
            if self.requests() >= n {
                return true;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return self.requests() >= n;
            }
        }
    }

    /// Closes the listener and every open connection: connects are refused.
    pub(crate) async fn refuse_connections(&self) {
        let server = self.server.lock().unwrap().take();
        if let Some(server) = server {
            server.abort();
            let _ = server.await;
        }
    }

    /// Listens again on the same address.
    pub(crate) fn accept_connections(&self) {
        let mut server = self.server.lock().unwrap();
        if server.is_none() {
            let listener = listen(self.addr);
            *server = Some(tokio::spawn(serve(listener, self.state.clone())));
        }
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        if let Some(server) = self.server.lock().unwrap().take() {
            server.abort();
        }
    }
}

/// A listener on `addr`, reusable at once after [`Faulty::refuse_connections`].
fn listen(addr: SocketAddr) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    socket.bind(addr).unwrap();
    socket.listen(1024).unwrap()
}

/// Accepts connections; aborting this task closes them all (they live in its `JoinSet`).
async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next() => {}
        }
    }
}

/// Whether the path names a key (`/bucket/key`), not just the bucket.
fn is_object(path: &str) -> bool {
    path.trim_start_matches('/')
        .split_once('/')
        .is_some_and(|(_, key)| !key.is_empty())
}

async fn answer(state: &State, request: Request<Incoming>) -> Response<Body> {
    state.all.fetch_add(1, Ordering::SeqCst);
    if !is_object(request.uri().path()) {
        return status(200, empty());
    }
    state
        .paths
        .lock()
        .unwrap()
        .push(request.uri().path().to_owned());
    state.objects.fetch_add(1, Ordering::SeqCst);
    state.arrived.notify_waiters();
    let fault = state.queue.lock().unwrap().pop_front();
    let fault = fault.or_else(|| state.always.lock().unwrap().clone());
    match fault {
        None => normal(state, request, None).await,
        Some(Fault::Unavailable) => status(503, empty()),
        Some(Fault::S3Error(code, name)) => s3_error(code, name),
        Some(Fault::Hang) => std::future::pending().await,
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            normal(state, request, None).await
        }
        Some(fault @ (Fault::ResetAfter(_) | Fault::Trickle { .. })) => {
            normal(state, request, Some(fault)).await
        }
    }
}

/// The normal answer, its body shaped by a body fault if there is one.
async fn normal(state: &State, request: Request<Incoming>, shape: Option<Fault>) -> Response<Body> {
    let bytes = match &state.origin {
        Origin::Forward(to) => return forward(state, *to, request).await,
        Origin::Object(bytes) => bytes.clone(),
    };
    let mut response = Response::new(if request.method() == http::Method::HEAD {
        empty()
    } else {
        shaped(bytes.clone(), shape)
    });
    let headers = response.headers_mut();
    headers.insert("content-length", bytes.len().into());
    headers.insert("etag", etag_of(&bytes).parse().unwrap());
    headers.insert("content-type", "application/octet-stream".parse().unwrap());
    headers.insert(
        "last-modified",
        "Wed, 01 Jan 2025 00:00:00 GMT".parse().unwrap(),
    );
    response
}

/// `bytes` as a body that breaks after some bytes or trickles, or whole.
fn shaped(bytes: Bytes, shape: Option<Fault>) -> Body {
    type Chunk = Result<Frame<Bytes>, std::io::Error>;
    let stream: Pin<Box<dyn futures_util::Stream<Item = Chunk> + Send + Sync>> = match shape {
        Some(Fault::ResetAfter(n)) => {
            let head = bytes.slice(..n.min(bytes.len()));
            let broken = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "injected");
            // The break comes after one pending poll, so the server has
            // flushed the head and the first bytes to the socket by then.
            let steps = stream::unfold(Some(head), move |head| async move {
                match head {
                    Some(head) => Some((Ok(Frame::data(head)), None)),
                    None => {
                        tokio::task::yield_now().await;
                        Some((Err(broken()), None))
                    }
                }
            });
            Box::pin(futures_util::StreamExt::take(steps, 2))
        }
        Some(Fault::Trickle { chunk, interval }) => {
            let pieces: Vec<Bytes> = (0..bytes.len())
                .step_by(chunk.max(1))
                .map(|at| bytes.slice(at..(at + chunk.max(1)).min(bytes.len())))
                .collect();
            Box::pin(stream::unfold(
                pieces.into_iter(),
                move |mut pieces| async move {
                    let piece = pieces.next()?;
                    tokio::time::sleep(interval).await;
                    Some((Ok(Frame::data(piece)), pieces))
                },
            ))
        }
        _ => return Full::new(bytes).map_err(|never| match never {}).boxed(),
    };
    StreamBody::new(stream).boxed()
}

/// Sends the request on to `to` unchanged (its `Host` and signature too).
async fn forward(state: &State, to: SocketAddr, request: Request<Incoming>) -> Response<Body> {
    let (mut parts, body) = request.into_parts();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = format!("http://{to}{target}").parse().unwrap();
    match state.client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(|b| b.map_err(std::io::Error::other).boxed()),
        Err(_) => status(502, empty()),
    }
}

fn s3_error(code: u16, name: &str) -> Response<Body> {
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{name}</Code>\
         <Message>injected {name}</Message><RequestId>FAULTY</RequestId></Error>"
    );
    let mut response = status(
        code,
        Full::new(Bytes::from(xml)).map_err(|n| match n {}).boxed(),
    );
    response
        .headers_mut()
        .insert("content-type", "application/xml".parse().unwrap());
    response
}

fn status(code: u16, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::from_u16(code).unwrap();
    response
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}
