//! The pooled hyper client and the leaf service that sends signed requests to S3.
//!
//! - `client`: one rustls-enabled, keep-alive connection pool per distinct
//!   trust configuration (system roots, or roots plus a bucket's private CA).
//! - `service`: [`Upstream`], sends the request through the bucket's
//!   [`crate::backend::S3Backend`] client with the request timeout, maps
//!   S3's XML errors and transport failures to [`crate::error::ProxyError`],
//!   and streams the body back with an idle timeout.
//! - `cap`: [`ConnectionCap`], a bucket's cap on requests in flight to S3
//!   (`upstream.max_connections_per_bucket`), held until the body ends.

mod body;
mod cap;
mod client;
pub mod config;
mod s3_error;
mod service;

pub use body::{BodyStalled, IdleTimeoutBody};
pub use cap::ConnectionCap;
pub use client::{ClientError, UpstreamClient, build_client};
pub use s3_error::parse_s3_error;
pub use service::{Upstream, forward_response_headers};

/// A replacement for the pooled S3 client at the bottom of every bucket's stack.
///
/// It receives the signed request with an absolute S3 URI and the route
/// extensions; used by benchmarks and tests to measure or observe the stack
/// without a network, and by embedders with a custom transport.
pub type LeafService = tower::util::BoxCloneSyncService<
    http::Request<crate::body::ProxyBody>,
    http::Response<crate::body::ProxyBody>,
    crate::error::ProxyError,
>;
