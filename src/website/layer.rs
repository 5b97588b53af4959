use std::sync::Arc;

use tower::Layer;

use super::{Website, WebsiteConfig};
use crate::config::BucketConfig;

/// Serves index documents, the error document and the SPA fallback for a
/// bucket with a `website` section.
#[derive(Debug, Clone)]
pub struct WebsiteLayer {
    config: Arc<WebsiteConfig>,
}

impl WebsiteLayer {
    /// The layer serving `config`.
    pub fn new(config: WebsiteConfig) -> Self {
        Self {
            config: Arc::new(config),
        }
    }

    /// The layer for `bucket`, or `None` when it has no website.
    pub fn for_bucket(bucket: &BucketConfig) -> Option<Self> {
        bucket.website.clone().map(Self::new)
    }
}

impl<S> Layer<S> for WebsiteLayer {
    type Service = Website<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Website {
            inner,
            config: self.config.clone(),
        }
    }
}
