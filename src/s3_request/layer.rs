use tower::Layer;

use super::S3Request;

/// Turns a routed client request into the unsigned S3 request.
#[derive(Debug, Clone, Copy, Default)]
pub struct S3RequestLayer;

impl<S> Layer<S> for S3RequestLayer {
    type Service = S3Request<S>;

    fn layer(&self, inner: S) -> Self::Service {
        S3Request { inner }
    }
}
