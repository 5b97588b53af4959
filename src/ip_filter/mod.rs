//! Per-bucket IP allow and block lists (`buckets[i].ip_filter`).
//!
//! The first layer of a bucket's stack, before rate limits and
//! authentication: a refused client costs one set lookup and never reaches
//! a token check, a policy, the cache or S3. It decides on the resolved
//! client address ([`crate::client_addr::ClientIp`]), so behind a trusted
//! load balancer it sees the real client, and a client that is not a
//! trusted proxy cannot choose its address by sending `X-Forwarded-For`.
//!
//! Rules: an empty allowlist lets everyone in; a non-empty one only the
//! addresses it holds; the blocklist is checked first and always wins.
//! A refusal is a 403 JSON answer (`AccessDenied`) with the request id,
//! counted in `yatagarasu_ip_filter_denied_total{bucket}` and logged.
//!
//! Lists are stored as merged, sorted integer ranges ([`IpSet`]): a lookup
//! is one binary search however many CIDRs are listed. The layer is rebuilt
//! with the bucket's stack on every reload.

pub mod config;
mod layer;
mod service;
mod set;

pub use config::IpFilterConfig;
pub use layer::IpFilterLayer;
pub use service::IpFilter;
pub use set::{EntryError, IpSet, parse_entry};
