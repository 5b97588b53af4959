//! The pooled hyper client and the leaf service that sends signed requests to S3.
//!
//! - `client`: one rustls-enabled, keep-alive connection pool per distinct
//!   trust configuration (system roots, or roots plus a bucket's private CA).
//! - `backend`: [`S3Backend`], everything needed to address and sign for one bucket.
//! - `service`: [`Upstream`], sends the request with the request timeout, maps
//!   S3's XML errors and transport failures to [`crate::error::ProxyError`],
//!   and streams the body back with an idle timeout.

mod backend;
mod body;
mod client;
pub mod config;
mod s3_error;
mod service;

pub use backend::{S3Backend, encode_key};
pub use body::{BodyStalled, IdleTimeoutBody};
pub use client::{ClientError, UpstreamClient, build_client};
pub use s3_error::parse_s3_error;
pub use service::{Upstream, forward_response_headers};
