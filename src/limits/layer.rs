use tower::Layer;

use super::SecurityLimits;

/// Refuses methods other than GET/HEAD (405) and unsafe paths (400).
#[derive(Debug, Clone, Copy, Default)]
pub struct SecurityLimitsLayer;

impl<S> Layer<S> for SecurityLimitsLayer {
    type Service = SecurityLimits<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityLimits { inner }
    }
}
