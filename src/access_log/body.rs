use std::net::SocketAddr;

use bytes::Bytes;
use http::StatusCode;
use metrics::SharedString;
use tokio::time::Instant;

use super::SharedLogContext;
use crate::body::{BodyEnd, BodyWatcher};
use crate::telemetry::metrics::{
    HTTP_REQUEST_DURATION_SECONDS, HTTP_REQUESTS_TOTAL, HTTP_RESPONSE_BYTES_TOTAL,
};
use crate::telemetry::otel;

/// What the access log keeps of a request until its response body is done;
/// dropping it ends the in-flight count.
pub struct Finish {
    pub(super) start: Instant,
    pub(super) method: &'static str,
    pub(super) is_head: bool,
    pub(super) path: Box<str>,
    pub(super) client: Option<SocketAddr>,
    pub(super) context: SharedLogContext,
    pub(super) span: tracing::Span,
    /// Decremented when the request is finished (on drop).
    pub(super) in_flight: metrics::Gauge,
    /// While the slow-request log is on: what its line needs besides the above.
    pub(super) slow: Option<SlowTiming>,
}

impl std::fmt::Debug for Finish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Finish")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What the slow-request log needs that the access log does not keep.
pub(super) struct SlowTiming {
    pub(super) request_id: Option<crate::request_id::RequestId>,
    /// Arrival to the response head.
    pub(super) head_after: Option<std::time::Duration>,
}

/// Longest path written to the access log; longer ones are cut (with `…`).
const MAX_LOGGED_PATH: usize = 1024;

impl Finish {
    /// Counts the request in the metrics and returns its bucket label.
    fn count(&self, status: StatusCode, bytes: u64, elapsed: std::time::Duration) -> SharedString {
        // Routed requests record through the bucket's pre-resolved handles.
        if let Some(m) = self.context.bucket() {
            m.request_duration.record(elapsed.as_secs_f64());
            if bytes > 0 {
                m.response_bytes.increment(bytes);
            }
            m.count_request(self.method, status);
            return m.label();
        }
        let none = SharedString::const_str("none");
        metrics::histogram!(HTTP_REQUEST_DURATION_SECONDS, "bucket" => none.clone())
            .record(elapsed.as_secs_f64());
        if bytes > 0 {
            metrics::counter!(HTTP_RESPONSE_BYTES_TOTAL, "bucket" => none.clone()).increment(bytes);
        }
        metrics::counter!(
            HTTP_REQUESTS_TOTAL,
            "bucket" => none.clone(),
            "method" => self.method,
            "status" => status_label(status)
        )
        .increment(1);
        none
    }

    /// `client` for the log, and the TCP peer when the client was resolved
    /// from forwarding headers to another address.
    fn addresses(&self) -> (Option<String>, Option<String>) {
        match (self.context.client(), self.client) {
            (Some(client), Some(peer)) if client != peer.ip().to_canonical() => {
                (Some(client.to_string()), Some(peer.to_string()))
            }
            (Some(client), None) => (Some(client.to_string()), None),
            (_, peer) => (peer.map(|p| p.to_string()), None),
        }
    }

    fn record(self, status: StatusCode, bytes: u64, completed: bool) {
        let elapsed = self.start.elapsed();
        self.context.finish(super::Finished {
            status,
            bytes,
            elapsed,
            completed,
        });
        let bucket = self.count(status, bytes, elapsed);
        otel::record_status(&self.span, status);
        // For this line and the audit record (which reads the context).
        let trace_id = otel::trace_id(&self.span);
        if let Some(trace_id) = &trace_id {
            self.context.set_trace_id(trace_id);
        }
        if let Some(slow) = &self.slow {
            self.span
                .in_scope(|| self.report_slow(slow, &bucket, status, elapsed));
        }
        let probe = self.context.is_probe();
        let enabled = if probe {
            tracing::enabled!(target: "access", tracing::Level::DEBUG)
        } else {
            tracing::enabled!(target: "access", tracing::Level::INFO)
        };
        if !enabled {
            return;
        }
        let path = truncate(&self.path, MAX_LOGGED_PATH);
        let (client, peer) = self.addresses();
        macro_rules! access_event {
            ($level:ident) => {
                tracing::$level!(
                    target: "access",
                    method = self.method,
                    path = &*path,
                    bucket = &*bucket,
                    status = status.as_u16(),
                    bytes,
                    duration_ms = elapsed.as_secs_f64() * 1000.0,
                    client = client.as_deref().unwrap_or("-"),
                    peer = peer.as_deref(),
                    sub = self.context.subject(),
                    kid = self.context.key_id(),
                    trace_id = trace_id.as_deref(),
                    completed,
                    "request finished"
                )
            };
        }
        self.span.in_scope(|| {
            if probe {
                access_event!(debug);
            } else {
                access_event!(info);
            }
        });
    }
}

impl Finish {
    /// The slow-request log line, when the request was slow.
    fn report_slow(
        &self,
        slow: &SlowTiming,
        bucket: &str,
        status: StatusCode,
        elapsed: std::time::Duration,
    ) {
        let path = truncate(&self.path, MAX_LOGGED_PATH);
        otel::slow::report(&otel::slow::SlowRequest {
            request_id: slow.request_id.as_ref().map(|id| id.as_str()),
            method: self.method,
            path: &path,
            bucket,
            status: status.as_u16(),
            elapsed,
            head_after: slow.head_after,
            phases: self.context.phases(),
        });
    }
}

/// A metrics label for a status without allocating for the common ones.
pub(crate) fn status_label(status: StatusCode) -> SharedString {
    let text = match status.as_u16() {
        200 => "200",
        206 => "206",
        304 => "304",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        412 => "412",
        416 => "416",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => return SharedString::from(status.as_str().to_owned()),
    };
    SharedString::const_str(text)
}

fn truncate(path: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if path.len() <= max {
        return path.into();
    }
    let mut end = max;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end]).into()
}

/// Watches a response body and writes the access-log event when it ends or
/// is dropped.
pub(super) struct Logged {
    status: StatusCode,
    bytes: u64,
    finish: Finish,
}

impl Logged {
    pub(super) fn new(finish: Finish, status: StatusCode) -> Self {
        Self {
            status,
            bytes: 0,
            finish,
        }
    }
}

impl BodyWatcher for Logged {
    fn on_data(&mut self, data: &Bytes) {
        self.bytes += data.len() as u64;
    }

    fn on_end(self, end: BodyEnd<'_>) {
        if let BodyEnd::Failed(error) = &end {
            (self.finish.span)
                .in_scope(|| tracing::warn!(%error, "response body failed mid-stream"));
        }
        let completed = matches!(end, BodyEnd::Complete) || self.finish.is_head;
        self.finish.record(self.status, self.bytes, completed);
    }
}
