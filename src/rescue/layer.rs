use tower::Layer;

use super::Rescue;

/// Maps `ProxyError`s and panics to JSON responses.
#[derive(Debug, Clone, Copy, Default)]
pub struct RescueLayer;

impl<S> Layer<S> for RescueLayer {
    type Service = Rescue<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Rescue::new(inner)
    }
}
