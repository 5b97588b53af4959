//! One audit record: who asked for what, when, and what they got.

use std::net::IpAddr;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

use super::clock;
use crate::config::AuditLevel;
use crate::request_id::RequestId;

/// One request as the audit log writes it (one JSON object per line); the
/// schema is documented in docs/operations.md. Never holds the token.
#[derive(Debug, Serialize)]
pub(crate) struct Record {
    /// When the request arrived (RFC 3339, UTC, milliseconds).
    #[serde(serialize_with = "timestamp")]
    pub(crate) timestamp: SystemTime,
    /// `debug` (probes), `info`, `warn` (refusals), `error` (5xx).
    #[serde(serialize_with = "level")]
    pub(crate) level: AuditLevel,
    /// The proxy's request id (`X-Request-ID`).
    #[serde(serialize_with = "id", skip_serializing_if = "Option::is_none")]
    pub(crate) request_id: Option<RequestId>,
    /// The client's `X-Correlation-ID`, when it was 1–128 visible ASCII characters.
    #[serde(serialize_with = "id", skip_serializing_if = "Option::is_none")]
    pub(crate) correlation_id: Option<RequestId>,
    /// The client address (resolved through trusted proxies when configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) client_ip: Option<IpAddr>,
    /// The verified token's `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user: Option<Box<str>>,
    /// The claims named in `audit_log.include_claims` that the token had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The bucket the request was routed to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) bucket: Option<Box<str>>,
    /// The object key within the bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) object_key: Option<Box<str>>,
    pub(crate) http_method: &'static str,
    /// The URL path (never the query string: it may carry a token).
    pub(crate) request_path: Box<str>,
    pub(crate) response_status: u16,
    /// Body bytes sent.
    pub(crate) response_size_bytes: u64,
    pub(crate) duration_ms: f64,
    /// Whether the body was sent in full (false: the client went away, or S3 failed mid-body).
    pub(crate) completed: bool,
    /// The `X-Cache` answer (`HIT memory`, `MISS`, …), when the cache ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cache_status: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_agent: Option<Box<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) referer: Option<Box<str>>,
    /// The error code of a proxy-made error answer (`AccessDenied`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_code: Option<&'static str>,
    /// Why a 401, 403 or 429 was answered (the IP filter, a token problem, a rate limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) denial_reason: Option<&'static str>,
    /// The OpenTelemetry trace id, when the request was traced and sampled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trace_id: Option<Box<str>>,
}

impl Record {
    /// The record as one JSON line, newline included.
    pub(crate) fn line(&self) -> Vec<u8> {
        // Serialising plain fields cannot fail; an empty object is the fallback.
        let mut line = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        line.push(b'\n');
        line
    }
}

/// The level of a request's record, from its status.
pub(crate) fn level_of(status: u16, probe: bool) -> AuditLevel {
    match status {
        _ if probe => AuditLevel::Debug,
        401 | 403 | 429 => AuditLevel::Warn,
        500.. => AuditLevel::Error,
        _ => AuditLevel::Info,
    }
}

/// Longest header value (user agent, referer) kept in a record.
const MAX_HEADER: usize = 512;
/// Longest path kept in a record.
const MAX_PATH: usize = 1024;

/// `text` cut to `max` bytes at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> Box<str> {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].into()
}

/// A request header for a record: its text, cut to [`MAX_HEADER`].
pub(crate) fn header(request: &http::HeaderMap, name: http::HeaderName) -> Option<Box<str>> {
    let value = request.get(name)?.to_str().ok()?;
    Some(cut(value, MAX_HEADER))
}

/// The path for a record, cut to [`MAX_PATH`].
pub(crate) fn path(path: &str) -> Box<str> {
    cut(path, MAX_PATH)
}

fn timestamp<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&clock::rfc3339(*time))
}

fn level<S: Serializer>(level: &AuditLevel, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match level {
        AuditLevel::Debug => "debug",
        AuditLevel::Info => "info",
        AuditLevel::Warn => "warn",
        AuditLevel::Error => "error",
    })
}

fn id<S: Serializer>(id: &Option<RequestId>, s: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => s.serialize_str(id.as_str()),
        None => s.serialize_none(),
    }
}
