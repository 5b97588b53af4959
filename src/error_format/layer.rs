use tower::Layer;

use super::{BucketErrorFormat, BucketErrors};
use crate::config::BucketConfig;

/// Renders the errors of a bucket's stack in the bucket's fixed format
/// (`errors: json` or `errors: s3_xml`).
#[derive(Debug, Clone, Copy)]
pub struct ErrorFormatLayer {
    pub(super) xml: bool,
}

impl ErrorFormatLayer {
    /// The layer for `bucket`, or `None` for `errors: auto` (the rescue
    /// layer's per-request detection stands, at no cost here).
    pub fn for_bucket(bucket: &BucketConfig) -> Option<Self> {
        match bucket.errors {
            BucketErrors::Auto => None,
            BucketErrors::Json => Some(Self { xml: false }),
            BucketErrors::S3Xml => Some(Self { xml: true }),
        }
    }
}

impl<S> Layer<S> for ErrorFormatLayer {
    type Service = BucketErrorFormat<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BucketErrorFormat {
            inner,
            xml: self.xml,
        }
    }
}
