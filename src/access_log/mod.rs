//! One access-log event and the request metrics per request.
//!
//! The event is written when the response body finishes (or the client goes
//! away), so it carries the real byte count and duration, like nginx's access
//! log. The in-flight gauge is a guard moved into the response body: a request
//! counts as in flight until its last byte is sent.

mod body;
mod layer;
mod service;

pub(crate) use body::status_label;
pub use layer::AccessLogLayer;
pub use service::{AccessLogService, ResponseFuture};

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use crate::telemetry::metrics::BucketMetrics;

/// The peer address of the client connection, inserted by the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// Filled by inner layers with what the access log should know about the request.
///
/// Inner layers answer errors as `Err` that only become responses further
/// out, so they cannot tag the response; they record into this slot instead.
#[derive(Debug, Default)]
pub struct LogContext {
    bucket: OnceLock<Arc<BucketMetrics>>,
    probe: AtomicBool,
    subject: OnceLock<Box<str>>,
    key_id: OnceLock<Box<str>>,
    /// The client resolved from trusted proxies' headers
    /// ([`crate::client_addr`]), when resolution ran.
    client: OnceLock<IpAddr>,
    /// A load-shedding permit, released when the response body ends (the
    /// context lives as long as the access log's body guard).
    permit: OnceLock<tokio::sync::OwnedSemaphorePermit>,
    /// Set by the audit log: inner layers then also record the object key
    /// and the token's claims (otherwise they skip the copy).
    detailed: AtomicBool,
    object_key: OnceLock<Box<str>>,
    claims: OnceLock<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// What the access log measured, once the response body ended.
    finished: OnceLock<Finished>,
    /// The request's OpenTelemetry trace id, when it was traced and sampled.
    trace_id: OnceLock<Box<str>>,
    /// Time in each phase, filled while the slow-request log is on.
    phases: crate::telemetry::otel::phase::PhaseTimes,
}

/// The outcome of a request as the access log measured it, shared with the
/// audit log so the two never measure twice.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    /// The status sent.
    pub status: http::StatusCode,
    /// Body bytes sent.
    pub bytes: u64,
    /// From the request's arrival to its last byte (or the client leaving).
    pub elapsed: std::time::Duration,
    /// Whether the body was sent in full.
    pub completed: bool,
}

impl LogContext {
    /// Holds `permit` until the response has been sent (first call wins).
    pub fn hold(&self, permit: tokio::sync::OwnedSemaphorePermit) {
        let _ = self.permit.set(permit);
    }

    /// Records the bucket the request was routed to (first call wins).
    pub fn set_bucket(&self, bucket: Arc<BucketMetrics>) {
        let _ = self.bucket.set(bucket);
    }

    /// The bucket the request was routed to, if any.
    pub fn bucket(&self) -> Option<&Arc<BucketMetrics>> {
        self.bucket.get()
    }

    /// Marks the request as a health or readiness probe: logged at DEBUG, so
    /// load balancers polling every second do not flood the access log.
    pub fn mark_probe(&self) {
        self.probe.store(true, Ordering::Relaxed);
    }

    /// Records who the verified token belongs to (`sub`) and the key (`kid`)
    /// that verified it; never the token itself.
    pub fn set_identity(&self, subject: Option<&str>, key_id: Option<&str>) {
        if let Some(subject) = subject {
            let _ = self.subject.set(subject.into());
        }
        if let Some(key_id) = key_id {
            let _ = self.key_id.set(key_id.into());
        }
    }

    /// The verified token's subject, if the request carried one.
    pub fn subject(&self) -> Option<&str> {
        self.subject.get().map(|s| &**s)
    }

    /// The `kid` of the key that verified the request's token, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.get().map(|s| &**s)
    }

    /// Records the resolved client address (first call wins): the access
    /// log writes it as `client`, and the peer as `peer` when they differ.
    pub fn set_client(&self, client: IpAddr) {
        let _ = self.client.set(client);
    }

    /// The resolved client address, if resolution ran.
    pub fn client(&self) -> Option<IpAddr> {
        self.client.get().copied()
    }

    /// Asks inner layers for the object key and claims (the audit log does).
    pub fn want_details(&self) {
        self.detailed.store(true, Ordering::Relaxed);
    }

    /// Records the object key, when details were asked for (first call wins).
    pub fn set_object_key(&self, key: &str) {
        if self.detailed.load(Ordering::Relaxed) {
            let _ = self.object_key.set(key.into());
        }
    }

    /// The object key, when recorded.
    pub fn object_key(&self) -> Option<&str> {
        self.object_key.get().map(|k| &**k)
    }

    /// Records the verified token's claims, when details were asked for.
    pub fn set_claims(&self, claims: &Arc<serde_json::Map<String, serde_json::Value>>) {
        if self.detailed.load(Ordering::Relaxed) {
            let _ = self.claims.set(claims.clone());
        }
    }

    /// The verified token's claims, when recorded.
    pub fn claims(&self) -> Option<&serde_json::Map<String, serde_json::Value>> {
        self.claims.get().map(|c| &**c)
    }

    /// Records the request's outcome (first call wins).
    pub fn finish(&self, finished: Finished) {
        let _ = self.finished.set(finished);
    }

    /// The request's outcome, once its response body ended.
    pub fn finished(&self) -> Option<Finished> {
        self.finished.get().copied()
    }

    /// Records the request's trace id (first call wins).
    pub fn set_trace_id(&self, trace_id: &str) {
        let _ = self.trace_id.set(trace_id.into());
    }

    /// The request's trace id, when it was traced and sampled.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.get().map(|t| &**t)
    }

    /// Time spent in each phase so far (filled while the slow log is on).
    pub fn phases(&self) -> &crate::telemetry::otel::phase::PhaseTimes {
        &self.phases
    }

    /// Whether the request was a probe.
    pub fn is_probe(&self) -> bool {
        self.probe.load(Ordering::Relaxed)
    }
}

/// Shared handle to a request's [`LogContext`], as a request extension.
pub type SharedLogContext = Arc<LogContext>;
