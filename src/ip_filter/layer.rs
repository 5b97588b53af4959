use std::sync::Arc;

use metrics::Counter;
use tower::Layer;

use super::{IpFilter, IpFilterConfig};
use crate::config::BucketConfig;
use crate::telemetry::metrics::IP_FILTER_DENIED_TOTAL;

/// Refuses clients outside a bucket's allowlist or inside its blocklist (403).
#[derive(Debug, Clone)]
pub struct IpFilterLayer {
    rules: Arc<Rules>,
}

/// What every clone of the service shares.
#[derive(Debug)]
pub(super) struct Rules {
    pub(super) filter: IpFilterConfig,
    pub(super) bucket: Arc<str>,
    /// `yatagarasu_ip_filter_denied_total{bucket}`, resolved once.
    pub(super) denied: Counter,
}

impl IpFilterLayer {
    /// The layer enforcing `filter` for the bucket `bucket`.
    pub fn new(bucket: &str, filter: IpFilterConfig) -> Self {
        let bucket: Arc<str> = bucket.into();
        let denied = metrics::counter!(IP_FILTER_DENIED_TOTAL, "bucket" => bucket.to_string());
        Self {
            rules: Arc::new(Rules {
                filter,
                bucket,
                denied,
            }),
        }
    }

    /// The layer for `bucket`, or `None` when it filters nobody.
    pub fn for_bucket(bucket: &BucketConfig) -> Option<Self> {
        (!bucket.ip_filter.is_empty()).then(|| Self::new(&bucket.name, bucket.ip_filter.clone()))
    }
}

impl<S> Layer<S> for IpFilterLayer {
    type Service = IpFilter<S>;

    fn layer(&self, inner: S) -> Self::Service {
        IpFilter {
            inner,
            rules: self.rules.clone(),
        }
    }
}
