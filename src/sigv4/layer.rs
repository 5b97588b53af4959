use tower::Layer;

use super::SigV4;

/// Signs each upstream request with its bucket's credentials.
#[derive(Debug, Clone, Copy, Default)]
pub struct SigV4Layer;

impl<S> Layer<S> for SigV4Layer {
    type Service = SigV4<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SigV4 { inner }
    }
}
