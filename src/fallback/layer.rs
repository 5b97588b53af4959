use std::sync::Arc;

use tower::Layer;

use super::{Fallback, TargetService};

/// Wraps a bucket's targets with its `fallback_on_404` stack.
#[derive(Debug, Clone)]
pub struct FallbackLayer {
    bucket: Arc<str>,
    fallback: TargetService,
}

impl FallbackLayer {
    /// Looks keys the targets of `bucket` do not have up in `fallback`
    /// (the fallback bucket's own stack).
    pub fn new(bucket: Arc<str>, fallback: TargetService) -> Self {
        Self { bucket, fallback }
    }
}

impl<S> Layer<S> for FallbackLayer {
    type Service = Fallback<S>;

    fn layer(&self, primary: S) -> Self::Service {
        Fallback {
            primary,
            fallback: self.fallback.clone(),
            bucket: self.bucket.clone(),
        }
    }
}
