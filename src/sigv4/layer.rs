use std::sync::Arc;

use tower::Layer;

use super::SigV4;
use crate::backend::S3Backend;

/// Signs each upstream request with its bucket's credentials.
#[derive(Debug, Clone)]
pub struct SigV4Layer {
    backend: Arc<S3Backend>,
}

impl SigV4Layer {
    /// Signs for `backend` (its identity, region and signature memo).
    pub fn new(backend: Arc<S3Backend>) -> Self {
        Self { backend }
    }
}

impl<S> Layer<S> for SigV4Layer {
    type Service = SigV4<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SigV4 {
            inner,
            backend: self.backend.clone(),
        }
    }
}
