use std::sync::Arc;

use tower::Layer;

use super::AuditService;
use super::sink::AuditSink;

/// Writes one audit record per request, when the audit log is enabled.
///
/// Outermost after the request id (so the record carries it), and outside
/// the access log, whose measurements (status, bytes, duration) it reuses.
#[derive(Debug, Clone, Default)]
pub struct AuditLayer {
    sink: Option<Arc<AuditSink>>,
}

impl AuditLayer {
    /// The layer writing to `log`'s outputs; `None`: a pass-through.
    pub fn new(log: Option<&super::AuditLog>) -> Self {
        Self {
            sink: log.map(|log| log.sink.clone()),
        }
    }
}

impl<S> Layer<S> for AuditLayer {
    type Service = AuditService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuditService {
            inner,
            sink: self.sink.clone(),
        }
    }
}
