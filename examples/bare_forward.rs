//! A bare forwarding proxy built from the same parts as Yatagarasu, and nothing else.
//!
//! It exists as the floor for the 1 KiB forwarding load benchmark
//! (`scripts/bench-load.sh`, step (g)): the parts the design fixes, with no
//! layers between them. In front, hyper-util's auto builder with the settings
//! of Yatagarasu's listener, on the same runtime and allocator
//! (`examples/support`, shared with `bare_hyper`). Behind, Yatagarasu's own
//! upstream client ([`yatagarasu::upstream::build_client`] with the default
//! `upstream:` settings: hyper-util's legacy pooled client, the rustls-capable
//! connector, `TCP_NODELAY`, 96 KiB reads). Every request is forwarded to
//! `ORIGIN` with its method and path, a `Host` header and nothing else, and
//! the response is streamed back with its status, `Content-Type` and
//! `Content-Length`. No routing, limits, signing, metrics or logs: what
//! Yatagarasu costs above this program is the price of its layers, and what
//! this program costs is the price of the parts underneath them.
//!
//! ```text
//! cargo build --release --example bare_forward
//! taskset -c 1 target/release/examples/bare_forward 127.0.0.1:8082 http://127.0.0.1:8080
//! curl -i http://127.0.0.1:8082/bench-bucket/1k.bin
//! ```
//!
//! The server runs until it is killed.

use std::error::Error;

use http::{HeaderValue, Request, Response, Uri, header};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Bytes, Incoming};
use tokio::net::TcpListener;
use yatagarasu::config::UpstreamConfig;
use yatagarasu::upstream::{UpstreamClient, build_client};

mod support;

const USAGE: &str =
    "usage: bare_forward ADDRESS ORIGIN  (e.g. 127.0.0.1:8082 http://127.0.0.1:8080)";

type BoxError = Box<dyn Error + Send + Sync>;

/// Where requests go, prepared once.
#[derive(Clone)]
struct Origin {
    client: UpstreamClient,
    uri: Uri,
    host: HeaderValue,
}

impl Origin {
    /// Forwards one request: same method and path, the origin's `Host`, no
    /// client headers; the answer's body streams through.
    async fn forward(
        self,
        request: Request<Incoming>,
    ) -> Result<Response<BoxBody<Bytes, hyper::Error>>, BoxError> {
        let mut parts = self.uri.into_parts();
        parts.path_and_query = request.uri().path_and_query().cloned();
        let mut upstream = Request::new(yatagarasu::body::empty());
        *upstream.method_mut() = request.method().clone();
        *upstream.uri_mut() = Uri::from_parts(parts)?;
        upstream.headers_mut().insert(header::HOST, self.host);
        let (head, body) = self.client.request(upstream).await?.into_parts();
        let mut response = Response::new(body.boxed());
        *response.status_mut() = head.status;
        for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH] {
            if let Some(value) = head.headers.get(&name) {
                response.headers_mut().insert(name, value.clone());
            }
        }
        Ok(response)
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let address = support::address(args.next(), USAGE)?;
    let uri: Uri = args.next().ok_or(USAGE)?.parse()?;
    let host = HeaderValue::from_str(uri.authority().ok_or(USAGE)?.as_str())?;
    support::runtime()?.block_on(async move {
        let origin = Origin {
            client: build_client(&UpstreamConfig::default(), None)?,
            uri,
            host,
        };
        let listener = TcpListener::bind(address).await?;
        eprintln!(
            "bare_forward listening on {}, forwarding to {}",
            listener.local_addr()?,
            origin.uri
        );
        support::serve(listener, move |request| origin.clone().forward(request)).await;
        Ok(())
    })
}
