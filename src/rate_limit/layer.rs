use std::net::IpAddr;
use std::sync::Arc;

use metrics::Counter;
use tower::Layer;

use super::limiter::{KeyedLimit, SharedLimit, UserLimit};
use super::service::{ClientLimits, ClientRateLimit, UserRateLimit};
use crate::telemetry::metrics::RATE_LIMITED_TOTAL;

/// `yatagarasu_rate_limited_total{scope,bucket}` of one bucket, resolved
/// when the layer is built so a refusal does not allocate.
pub(crate) fn refusals(scope: &'static str, bucket: &str) -> Counter {
    metrics::counter!(RATE_LIMITED_TOTAL, "scope" => scope, "bucket" => bucket.to_owned())
}

/// Refuses a bucket's requests beyond the global, per-address or
/// per-bucket limit (429), before authentication spends anything on them.
#[derive(Debug, Clone)]
pub struct ClientRateLimitLayer {
    limits: Arc<ClientLimits>,
}

impl ClientRateLimitLayer {
    /// The layer of bucket `bucket`: the limits shared by every bucket
    /// (`global`, `per_ip`) and its own (`own`).
    pub fn new(
        bucket: &str,
        global: Option<Arc<SharedLimit>>,
        per_ip: Option<Arc<KeyedLimit<IpAddr>>>,
        own: Option<Arc<SharedLimit>>,
    ) -> Self {
        let limits = ClientLimits {
            global,
            per_ip,
            bucket: own,
            refused_global: refusals("global", bucket),
            refused_ip: refusals("ip", bucket),
            refused_bucket: refusals("bucket", bucket),
        };
        Self {
            limits: Arc::new(limits),
        }
    }
}

impl<S> Layer<S> for ClientRateLimitLayer {
    type Service = ClientRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientRateLimit {
            inner,
            limits: self.limits.clone(),
        }
    }
}

/// Refuses a bucket's requests beyond each user's limit (429), after
/// authorization (it needs the verified claims) and before the cache.
#[derive(Debug, Clone)]
pub struct UserRateLimitLayer {
    limit: Arc<UserLimit>,
    refused: Counter,
}

impl UserRateLimitLayer {
    /// The layer of bucket `bucket` with its per-user `limit`.
    pub fn new(bucket: &str, limit: Arc<UserLimit>) -> Self {
        Self {
            limit,
            refused: refusals("user", bucket),
        }
    }
}

impl<S> Layer<S> for UserRateLimitLayer {
    type Service = UserRateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        UserRateLimit {
            inner,
            limit: self.limit.clone(),
            refused: self.refused.clone(),
        }
    }
}
