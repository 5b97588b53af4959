use std::sync::Arc;

use tower::Layer;

use super::{Breaker, CircuitBreaker};

/// Puts one target's [`Breaker`] in front of the service that reaches it.
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer {
    breaker: Arc<Breaker>,
}

impl CircuitBreakerLayer {
    /// Guards the wrapped service with `breaker` (shared across reloads).
    pub fn new(breaker: Arc<Breaker>) -> Self {
        Self { breaker }
    }
}

impl<S> Layer<S> for CircuitBreakerLayer {
    type Service = CircuitBreaker<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker {
            inner,
            breaker: self.breaker.clone(),
        }
    }
}
