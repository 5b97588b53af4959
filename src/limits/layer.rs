use tower::Layer;

use super::{SecurityLimits, SecurityLimitsConfig};

/// Refuses methods other than GET/HEAD (405), requests beyond the
/// configured size limits (414, 431, 413) and unsafe paths (400).
#[derive(Debug, Clone, Copy, Default)]
pub struct SecurityLimitsLayer {
    limits: SecurityLimitsConfig,
}

impl SecurityLimitsLayer {
    /// The layer enforcing `limits`.
    pub fn new(limits: SecurityLimitsConfig) -> Self {
        Self { limits }
    }
}

impl<S> Layer<S> for SecurityLimitsLayer {
    type Service = SecurityLimits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityLimits {
            inner,
            limits: self.limits,
        }
    }
}
