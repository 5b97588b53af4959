use std::sync::Arc;

use tower::Layer;

use super::Cors;
use super::config::{any_bucket_answers, effective};
use super::policy::CorsPolicy;
use crate::config::{BucketConfig, Config};

/// Answers CORS preflights and adds CORS fields to a bucket's answers
/// (`cors` / `buckets[i].cors`).
#[derive(Debug, Clone)]
pub struct CorsLayer {
    /// `None`: the bucket has no CORS, but another bucket does, so
    /// preflights reach this stack and are refused (405) as before.
    policy: Option<Arc<CorsPolicy>>,
}

impl CorsLayer {
    /// The layer for `bucket`: with its rules when it answers CORS; one
    /// that refuses preflights when only other buckets do; `None` when no
    /// bucket does (preflights then never get past the security limits).
    pub fn for_bucket(config: &Config, bucket: &BucketConfig) -> Option<Self> {
        match effective(config, bucket) {
            Some(cors) => Some(Self {
                policy: Some(Arc::new(CorsPolicy::new(cors))),
            }),
            None => any_bucket_answers(config).then_some(Self { policy: None }),
        }
    }
}

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Cors {
            inner,
            policy: self.policy.clone(),
        }
    }
}
