use std::sync::Arc;

use tokio::time::Instant;
use tower::Layer;

use super::{Health, Readiness};

/// Answers `/health` and `/ready`; passes everything else on.
#[derive(Debug, Clone)]
pub struct HealthLayer {
    readiness: Arc<Readiness>,
    buckets: Arc<[Arc<str>]>,
    started: Instant,
}

impl HealthLayer {
    /// `buckets` are the configured bucket names `/ready` reports on.
    pub fn new(readiness: Arc<Readiness>, buckets: Arc<[Arc<str>]>, started: Instant) -> Self {
        Self {
            readiness,
            buckets,
            started,
        }
    }
}

impl<S> Layer<S> for HealthLayer {
    type Service = Health<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Health {
            inner,
            config: self.clone(),
        }
    }
}

impl HealthLayer {
    pub(super) fn readiness(&self) -> &Readiness {
        &self.readiness
    }

    pub(super) fn buckets(&self) -> impl Iterator<Item = &str> {
        self.buckets.iter().map(|b| &**b)
    }

    pub(super) fn uptime_seconds(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}
