use std::sync::Arc;

use http::{Request, Response};
use metrics::SharedString;
use tower::retry::Policy;
use tower::retry::budget::{Budget, TpsBudget};

use super::{RetryConfig, backoff};
use crate::body::ProxyBody;
use crate::breaker::Failure;
use crate::error::ProxyError;
use crate::s3_request::replayable_copy;
use crate::telemetry::metrics::{RETRY_BUDGET_EXHAUSTED_TOTAL, UPSTREAM_RETRIES_TOTAL};

/// When a read is tried again: a `tower::retry` [`Policy`] over one target.
///
/// Retries only GET and HEAD, only after a [`Failure`] that came before any
/// response head (a response, once returned, is never retried: its body
/// may already be on its way to the client), at most `max_attempts` tries,
/// each retry paid from the bucket's budget, after a full-jitter backoff.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    shared: Arc<Settings>,
    /// Tries made so far for this request.
    tries: u32,
}

/// What every request's copy of the policy shares.
#[derive(Debug)]
struct Settings {
    config: RetryConfig,
    budget: Arc<TpsBudget>,
    bucket: SharedString,
}

impl RetryPolicy {
    /// Retries for `bucket` as `config` says, paid from `budget` (the bucket's).
    pub fn new(config: RetryConfig, budget: Arc<TpsBudget>, bucket: &str) -> Self {
        Self {
            shared: Arc::new(Settings {
                config,
                budget,
                bucket: SharedString::from(bucket.to_owned()),
            }),
            tries: 0,
        }
    }

    /// Whether another try is allowed after `failure`, counting it if so.
    fn allow(&self, failure: Failure) -> bool {
        let s = &self.shared;
        if self.tries >= s.config.max_attempts {
            return false;
        }
        if !s.budget.withdraw() {
            metrics::counter!(RETRY_BUDGET_EXHAUSTED_TOTAL, "bucket" => s.bucket.clone())
                .increment(1);
            return false;
        }
        metrics::counter!(
            UPSTREAM_RETRIES_TOTAL,
            "bucket" => s.bucket.clone(),
            "reason" => failure.label()
        )
        .increment(1);
        true
    }
}

impl Policy<Request<ProxyBody>, Response<ProxyBody>, ProxyError> for RetryPolicy {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _request: &mut Request<ProxyBody>,
        result: &mut Result<Response<ProxyBody>, ProxyError>,
    ) -> Option<Self::Future> {
        self.tries += 1;
        if self.tries == 1 {
            // Every original request earns the budget its share.
            self.shared.budget.deposit();
        }
        let failure = result.as_ref().err().and_then(Failure::of)?;
        if !self.allow(failure) {
            return None;
        }
        let config = &self.shared.config;
        let wait = backoff::full_jitter(self.tries, config.initial_backoff, config.max_backoff);
        Some(tokio::time::sleep(wait))
    }

    fn clone_request(&mut self, request: &Request<ProxyBody>) -> Option<Request<ProxyBody>> {
        if self.shared.config.max_attempts <= 1 {
            return None;
        }
        let mut copy = replayable_copy(request)?;
        // The copy is the next attempt: its upstream span says which retry it is.
        crate::telemetry::otel::Attempt::mark(&mut copy, self.tries + 1);
        Some(copy)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use http::Method;
    use http_body_util::BodyExt;
    use tower::retry::RetryLayer;
    use tower::{Service, ServiceBuilder, ServiceExt};

    use super::*;
    use crate::body::{empty, full};
    use crate::breaker::{Breaker, BreakerConfig, CircuitBreakerLayer};

    fn request() -> Request<ProxyBody> {
        let mut request = Request::new(empty());
        *request.uri_mut() = "/bucket/some/key.bin".parse().unwrap();
        let headers = request.headers_mut();
        headers.insert("host", "proxy.example".parse().unwrap());
        headers.insert("user-agent", "bench/1.0".parse().unwrap());
        headers.insert("accept", "*/*".parse().unwrap());
        request
            .extensions_mut()
            .insert(crate::route::ObjectKey("some/key.bin".into()));
        request
    }

    fn policy(max_attempts: u32) -> RetryPolicy {
        let config = RetryConfig {
            max_attempts,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            budget_percent: 10,
        };
        RetryPolicy::new(config, super::super::bucket_budget(&config), "b")
    }

    #[test]
    fn reads_are_kept_for_another_try_when_one_is_allowed() {
        let original = request();
        let copy = policy(3).clone_request(&original).unwrap();
        assert_eq!(copy.uri(), original.uri());
        assert!(copy.extensions().get::<crate::route::ObjectKey>().is_some());
        let mut post = request();
        *post.method_mut() = Method::POST;
        assert!(policy(3).clone_request(&post).is_none());
        assert!(
            policy(1).clone_request(&original).is_none(),
            "1 try: nothing to keep"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failures_are_retried_up_to_max_attempts_answers_never() {
        let mut p = policy(3);
        let mut req = request();
        let unavailable = || ProxyError::S3 {
            status: http::StatusCode::SERVICE_UNAVAILABLE,
            code: String::new(),
            message: String::new(),
        };
        assert!(p.retry(&mut req, &mut Err(unavailable())).is_some());
        assert!(p.retry(&mut req, &mut Err(unavailable())).is_some());
        assert!(
            p.retry(&mut req, &mut Err(unavailable())).is_none(),
            "3 tries made"
        );
        let mut fresh = policy(3);
        let open = ProxyError::CircuitOpen {
            retry_after: Duration::from_secs(1),
        };
        assert!(fresh.retry(&mut req, &mut Err(open)).is_none());
        assert!(
            fresh
                .retry(&mut req, &mut Ok(Response::new(empty())))
                .is_none()
        );
    }

    /// The added cost per request of a closed breaker and of the retry
    /// layer (no failure), against the same service without them. Run:
    /// `cargo test --lib retry::policy::tests::cost -- --ignored --nocapture`
    /// (meaningful only with optimisations on).
    #[tokio::test]
    #[ignore]
    async fn cost_per_request() {
        const N: u32 = 100_000;
        async fn run<S>(mut service: S) -> Duration
        where
            S: Service<Request<ProxyBody>, Response = Response<ProxyBody>, Error = ProxyError>
                + Clone,
        {
            let started = Instant::now();
            for _ in 0..N {
                let response = service
                    .ready()
                    .await
                    .unwrap()
                    .call(request())
                    .await
                    .unwrap();
                let _ = response.into_body().collect().await.unwrap();
            }
            started.elapsed() / N
        }
        let leaf = tower::service_fn(|_req: Request<ProxyBody>| async {
            Ok::<_, ProxyError>(Response::new(full(vec![b'x'; 1024])))
        });
        let breaker = Arc::new(Breaker::new(BreakerConfig::default(), "b", "primary"));
        let with_breaker = ServiceBuilder::new()
            .layer(CircuitBreakerLayer::new(breaker.clone()))
            .service(leaf);
        let with_both = ServiceBuilder::new()
            .layer(RetryLayer::new(policy(3)))
            .layer(CircuitBreakerLayer::new(breaker))
            .service(leaf);
        // Interleaved rounds, the best of each: the machine is shared.
        let (mut bare, mut one, mut both) = (Duration::MAX, Duration::MAX, Duration::MAX);
        for _ in 0..7 {
            bare = bare.min(run(leaf).await);
            one = one.min(run(with_breaker.clone()).await);
            both = both.min(run(with_both.clone()).await);
        }
        let (with_breaker, with_both) = (one, both);
        println!("bare {bare:?}, +breaker {with_breaker:?}, +retry+breaker {with_both:?}");
    }
}
