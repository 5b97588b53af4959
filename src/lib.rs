//! Yatagarasu: a streaming, signing S3 proxy built as a reloadable tower layer stack.
//!
//! Applications and browsers fetch objects over plain HTTP; the proxy maps URL
//! path prefixes to buckets, signs each request with that bucket's own
//! credentials (AWS SigV4) and streams the bytes back with constant memory.
//!
//! # Embedding
//!
//! [`Proxy`] is a `tower::Service<http::Request<B>>` with `Error = Infallible`
//! that is `Clone + Send + Sync`, so it mounts in any hyper or axum
//! application (see `examples/embed_axum.rs`):
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = yatagarasu::Config::from_yaml_str(r#"
//! buckets:
//!   - name: assets
//!     path_prefix: /assets
//!     s3: { bucket: my-assets, region: eu-west-1, anonymous: true }
//! "#)?;
//! let proxy = yatagarasu::Proxy::builder(config).build()?;
//! // axum: Router::new().nest_service("/files", proxy)
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - [`config`]: the configuration pipeline (`${VAR}` expansion, lenient
//!   scalars, errors with their paths, the top-level [`Config`]); each
//!   concern's settings live beside its layer (`auth::config`, …).
//! - [`stack`]: the only place that lists the layer order: the shared outer
//!   part, then one stack per bucket with only the layers it configures.
//! - [`build`]: [`BuildError`] and the staging that keeps a build free of
//!   side effects until its generation goes live.
//! - [`reload`]: [`Proxy`], the `ArcSwap` of (config, stack) generations.
//! - [`shared`]: what outlives reloads (connection pools, readiness, key
//!   sets, decision caches, the response cache, circuit breakers).
//! - [`server`]: listeners, signals, admin API, `/metrics`, graceful shutdown.
//! - One module per layer, outermost first: [`request_id`], [`audit`], [`access_log`],
//!   [`load_shed`], [`client_addr`], [`rescue`], [`health`], [`limits`], [`route`], then per
//!   bucket [`cors`], [`accept_ranges`], [`error_format`], [`ip_filter`], [`rate_limit`], [`auth`],
//!   [`authz`], [`website`], [`cache`], [`fallback`],
//!   [`failover`], then per S3 target [`retry`], [`breaker`], [`s3_request`], [`sigv4`], and the leaf
//!   [`upstream`], which sends to the bucket's S3 target ([`backend`]).
//! - [`credentials`]: run-time credentials from the AWS SDK's providers
//!   (IRSA, IMDS, ECS, assume-role), refreshed in the background.
//! - [`query`]: the one query-string parser and the parsed form of what is
//!   forwarded to S3, shared by [`auth`], [`cache`] and [`s3_request`].
//! - [`headers`]: the header sets passed between client and S3, defined once.
//! - [`error`]: typed errors and their single mapping to HTTP; [`body`]: the
//!   one body type.

pub mod accept_ranges;
pub mod access_log;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod backend;
pub mod body;
pub mod breaker;
pub mod build;
pub mod cache;
pub mod client_addr;
pub mod config;
pub mod cors;
pub mod credentials;
#[cfg(feature = "demo")]
pub mod demo;
pub mod error;
pub mod error_format;
pub mod failover;
pub mod fallback;
pub mod headers;
pub mod health;
pub mod ip_filter;
pub mod limits;
pub mod load_shed;
pub mod on_response;
pub mod query;
pub mod rate_limit;
pub mod reload;
pub mod request_id;
pub mod request_log;
pub mod rescue;
pub mod retry;
pub mod route;
pub mod s3_request;
pub mod server;
pub mod shared;
pub mod sigv4;
pub mod stack;
pub mod telemetry;
pub mod upstream;
pub mod website;

pub use build::BuildError;
pub use config::{Config, ConfigError, ConfigErrors};
pub use error::ProxyError;
pub use reload::{Proxy, ProxyBuilder};
