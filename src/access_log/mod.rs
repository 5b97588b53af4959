//! One access-log event and the request metrics per request.
//!
//! The event is written when the response body finishes (or the client goes
//! away), so it carries the real byte count and duration, like nginx's access
//! log. The in-flight gauge is a guard moved into the response body: a request
//! counts as in flight until its last byte is sent.

mod body;
mod layer;
mod service;

pub use body::LoggedBody;
pub(crate) use body::status_label;
pub use layer::AccessLogLayer;
pub use service::{AccessLogService, ResponseFuture};

use std::net::SocketAddr;
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
}

impl LogContext {
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

    /// Whether the request was a probe.
    pub fn is_probe(&self) -> bool {
        self.probe.load(Ordering::Relaxed)
    }
}

/// Shared handle to a request's [`LogContext`], as a request extension.
pub type SharedLogContext = Arc<LogContext>;
