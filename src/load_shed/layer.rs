use std::sync::Arc;

use tokio::sync::Semaphore;
use tower::Layer;

use super::LoadShed;

/// Sheds requests beyond a number in flight; `0` disables it.
#[derive(Debug, Clone)]
pub struct LoadShedLayer {
    permits: Option<Arc<Semaphore>>,
}

impl LoadShedLayer {
    /// At most `max_in_flight` requests at once (`0`: unlimited).
    pub fn new(max_in_flight: usize) -> Self {
        let max = max_in_flight.min(Semaphore::MAX_PERMITS);
        Self {
            permits: (max > 0).then(|| Arc::new(Semaphore::new(max))),
        }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LoadShed {
            inner,
            permits: self.permits.clone(),
        }
    }
}
