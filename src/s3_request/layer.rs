use std::sync::Arc;

use tower::Layer;

use super::S3Request;
use crate::backend::S3Backend;

/// Turns a routed client request into the unsigned S3 request.
#[derive(Debug, Clone)]
pub struct S3RequestLayer {
    backend: Arc<S3Backend>,
}

impl S3RequestLayer {
    /// Addresses requests to `backend` (its endpoint, bucket and addressing style).
    pub fn new(backend: Arc<S3Backend>) -> Self {
        Self { backend }
    }
}

impl<S> Layer<S> for S3RequestLayer {
    type Service = S3Request<S>;

    fn layer(&self, inner: S) -> Self::Service {
        S3Request {
            inner,
            backend: self.backend.clone(),
        }
    }
}
