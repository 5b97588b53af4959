//! Routing: the longest configured path prefix wins, matched on whole
//! segments, and the request goes on to that bucket's own stack.
//!
//! The [`RouteTable`] is a segment trie, so a lookup costs one hash probe per
//! path segment of the matched prefix, however many buckets are configured.
//! [`Route`] inserts the resolved [`BucketRoute`] and the [`ObjectKey`] as
//! request extensions (the access log, policy input and custom upstreams read
//! them) and calls the matched bucket's service: each bucket has exactly the
//! layers it configures (see `crate::stack`).

mod service;
mod table;

pub use service::{BucketService, Mounted, Route};
pub use table::RouteTable;

use std::sync::Arc;

use crate::backend::S3Backend;
use crate::telemetry::metrics::BucketMetrics;

/// One configured bucket as the request path sees it.
#[derive(Debug)]
pub struct BucketRoute {
    /// The bucket's configured name (metrics label, logs, `/ready`).
    pub name: Arc<str>,
    /// The path prefix it is mounted at.
    pub path_prefix: String,
    /// How to reach and sign for the S3 bucket behind it.
    pub backend: Arc<S3Backend>,
    /// The bucket's metric handles (shared with the access log).
    pub metrics: Arc<BucketMetrics>,
    /// The bucket's replicas in priority order (empty: `backend` is its
    /// only target); the readiness probes reach each of them.
    pub replicas: Vec<ReplicaRoute>,
    /// Whether the bare prefix (an empty key) goes on to the bucket's
    /// stack: a website bucket serves its index document there
    /// (`crate::website`); elsewhere it is a 404 (`EmptyKey`).
    pub serves_bare_prefix: bool,
}

/// One replica of a bucket, as the readiness probes see it.
#[derive(Debug)]
pub struct ReplicaRoute {
    /// The replica's configured name (the key in `/ready`).
    pub name: Arc<str>,
    /// How to reach and sign for it.
    pub backend: Arc<S3Backend>,
}

impl BucketRoute {
    /// A route for bucket `name` at `path_prefix`, with its metric handles.
    pub fn new(name: &str, path_prefix: impl Into<String>, backend: Arc<S3Backend>) -> Self {
        let name: Arc<str> = Arc::from(name);
        Self {
            metrics: Arc::new(BucketMetrics::new(name.clone())),
            name,
            path_prefix: path_prefix.into(),
            backend,
            replicas: Vec::new(),
            serves_bare_prefix: false,
        }
    }
}

/// The object key: the decoded request path after the bucket prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey(pub String);
