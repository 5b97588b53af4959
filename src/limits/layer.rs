use tower::Layer;

use super::{SecurityLimits, SecurityLimitsConfig};

/// Refuses methods other than GET/HEAD (405), requests beyond the
/// configured size limits (414, 431, 413) and unsafe paths (400).
#[derive(Debug, Clone, Copy, Default)]
pub struct SecurityLimitsLayer {
    limits: SecurityLimitsConfig,
    preflights: bool,
}

impl SecurityLimitsLayer {
    /// The layer enforcing `limits`.
    pub fn new(limits: SecurityLimitsConfig) -> Self {
        Self {
            limits,
            preflights: false,
        }
    }

    /// Lets CORS preflights (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`) through to routing when `allowed`:
    /// when some bucket answers CORS ([`crate::cors`]).
    pub fn with_preflights(mut self, allowed: bool) -> Self {
        self.preflights = allowed;
        self
    }
}

impl<S> Layer<S> for SecurityLimitsLayer {
    type Service = SecurityLimits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityLimits {
            inner,
            limits: self.limits,
            preflights: self.preflights,
        }
    }
}
