//! The audit log: one JSON record per request — who (client address, token
//! subject and chosen claims, never the token), what (bucket, key, method),
//! when, and the outcome (status, bytes, duration, cache, refusal reason).
//!
//! The record is built when the response body ends, from what the access
//! log measured ([`crate::access_log::LogContext`]), and handed to a bounded
//! queue per output without waiting: a full queue drops the record and
//! counts it in `yatagarasu_audit_dropped_total{output}`. Each output has
//! its own writer: a file rotated by size or day ([`AuditLogConfig::file`](crate::config::AuditLogConfig)),
//! syslog (RFC 5424 over UDP, or TCP with octet counting), and batches
//! uploaded to S3. The record schema is in docs/operations.md.

mod body;
mod clock;
pub mod config;
mod file;
mod layer;
mod record;
mod s3;
mod service;
mod sink;
mod syslog;

pub use layer::AuditLayer;
pub use service::{AuditService, ResponseFuture};
pub use sink::AuditLog;
