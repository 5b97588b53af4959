//! `observability.request_logging`: a log line for each request as it
//! arrives and for each response as its head is sent, with the headers
//! (token-carrying ones redacted) and optionally the first bytes of the body.
//!
//! The access log ([`crate::access_log`]) has one line per request with its
//! outcome; this layer is for looking at the exchange itself while
//! debugging a client, filtered by path globs and status. It sits below the
//! reload seam, so a reload changes what it logs; requests refused by load
//! shedding, before a configuration is consulted, are in the access log only.
//!
//! Lines go to target `request_log` at INFO:
//! - `request received`: `request_id`, `method`, `path` (never the query:
//!   it may carry a token), `client`, `headers`;
//! - `response sent`: `request_id`, `method`, `path`, `status`,
//!   `latency_ms` (arrival to the response head), `headers`, and with
//!   `log_response_body` the first `max_body_size` bytes as `body` (lossy
//!   UTF-8) with `body_truncated`; that line is written once those bytes
//!   have been sent, or the body ended.
//!
//! - `config`: the settings and their validation.
//! - `headers`: rendering headers with redaction.
//! - `layer`, `service`: the layer and its service.
//! - `body`: the watcher that captures a response's first bytes.

mod body;
pub mod config;
mod headers;
mod layer;
mod service;

pub use config::{PathFilter, RequestLogConfig};
pub use layer::RequestLogLayer;
pub use service::{RequestLog, ResponseFuture};

/// The target of the lines, to filter them (`logging.level:
/// info,request_log=off`).
pub const TARGET: &str = "request_log";
