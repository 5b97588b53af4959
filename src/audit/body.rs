use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::StatusCode;

use super::record::{Record, level_of};
use super::sink::AuditSink;
use crate::access_log::SharedLogContext;
use crate::body::{BodyEnd, BodyWatcher};
use crate::error::ErrorAnswer;
use crate::request_id::RequestId;

/// What the audit log keeps of a request until its response body ends.
pub struct Pending {
    pub(super) sink: Arc<AuditSink>,
    pub(super) context: SharedLogContext,
    pub(super) timestamp: SystemTime,
    pub(super) request_id: Option<RequestId>,
    pub(super) correlation_id: Option<RequestId>,
    pub(super) peer: Option<IpAddr>,
    pub(super) method: &'static str,
    pub(super) path: Box<str>,
    pub(super) user_agent: Option<Box<str>>,
    pub(super) referer: Option<Box<str>>,
    pub(super) cache_status: Option<Box<str>>,
    pub(super) error: Option<ErrorAnswer>,
    /// The response head's status (the access log's wins when it ran).
    pub(super) status: StatusCode,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Builds the record from what the access log measured, and queues it.
    fn send(self) {
        let context = &self.context;
        let finished = context.finished();
        let status = finished.map_or(self.status, |f| f.status).as_u16();
        let level = level_of(status, context.is_probe());
        if !self.sink.wants(level) {
            return;
        }
        let claims = context.claims().map(|all| {
            let wanted = self.sink.include_claims.iter();
            wanted
                .filter_map(|name| Some((name.clone(), all.get(name)?.clone())))
                .collect::<serde_json::Map<_, _>>()
        });
        let refused = matches!(status, 401 | 403 | 429);
        let record = Record {
            timestamp: self.timestamp,
            level,
            request_id: self.request_id,
            correlation_id: self.correlation_id,
            client_ip: context.client().or(self.peer),
            user: context.subject().map(Into::into),
            claims: claims.filter(|c| !c.is_empty()),
            bucket: context.bucket().map(|b| b.label().to_string().into()),
            object_key: context.object_key().map(Into::into),
            http_method: self.method,
            request_path: self.path,
            response_status: status,
            response_size_bytes: finished.map_or(0, |f| f.bytes),
            duration_ms: finished.map_or(0.0, |f| f.elapsed.as_secs_f64() * 1000.0),
            completed: finished.is_some_and(|f| f.completed),
            cache_status: self.cache_status,
            user_agent: self.user_agent,
            referer: self.referer,
            error_code: self.error.map(|e| e.code),
            denial_reason: self.error.filter(|_| refused).map(|e| e.message),
            trace_id: context.trace_id().map(Into::into),
        };
        self.sink.send(record);
    }
}

/// Writes the audit record when the response body ends or is dropped.
///
/// It measures nothing: the access log's body, inside it, records status,
/// bytes and duration into the shared context when it ends, and the watched
/// body drops it before [`BodyWatcher::on_end`], so the figures are final
/// when the record is built.
pub(super) struct Audited(pub(super) Pending);

impl BodyWatcher for Audited {
    fn on_end(self, _: BodyEnd<'_>) {
        self.0.send();
    }
}
