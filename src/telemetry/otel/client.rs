//! The exporter's HTTP client: the proxy's own hyper + rustls client (no
//! second HTTP or TLS stack), and the once-per-interval export error log.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Limited};
use opentelemetry_http::{HttpClient, HttpError};

use crate::config::UpstreamConfig;
use crate::upstream::{UpstreamClient, build_client};

/// At most one export error line per this interval (the others are counted in it).
pub(super) const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Largest collector answer read.
const MAX_ANSWER: usize = 1024 * 1024;

/// Posts OTLP batches. The batch processor calls it from its own thread;
/// the request itself runs on the proxy's runtime (hyper needs its reactor).
pub(super) struct ExportClient {
    client: UpstreamClient,
    runtime: tokio::runtime::Handle,
    timeout: Duration,
    failures: FailureLog,
}

impl std::fmt::Debug for ExportClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportClient").finish_non_exhaustive()
    }
}

impl ExportClient {
    pub(super) fn new(
        upstream: &UpstreamConfig,
        runtime: tokio::runtime::Handle,
        timeout: Duration,
    ) -> Result<Self, String> {
        let client = build_client(upstream, None).map_err(|e| format!("trace exporter: {e}"))?;
        Ok(Self {
            client,
            runtime,
            timeout,
            failures: FailureLog::default(),
        })
    }

    async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let timeout = self.timeout;
        let task = self.runtime.spawn(async move {
            let exchange = async {
                let response = client.request(request.map(crate::body::full)).await?;
                let (parts, body) = response.into_parts();
                let body = Limited::new(body, MAX_ANSWER).collect().await?.to_bytes();
                Ok::<_, HttpError>(Response::from_parts(parts, body))
            };
            match tokio::time::timeout(timeout, exchange).await {
                Ok(result) => result,
                Err(_) => Err(format!("no answer within {timeout:?}").into()),
            }
        });
        let result = match task.await {
            Ok(result) => result,
            Err(e) => Err(format!("export task ended: {e}").into()),
        };
        match &result {
            Ok(response) if !response.status().is_success() => {
                self.failures
                    .record(&format!("collector answered {}", response.status()));
            }
            Ok(_) => {}
            Err(error) => self.failures.record(&error.to_string()),
        }
        result
    }
}

impl HttpClient for ExportClient {
    fn send_bytes<'a, 'f>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'f>>
    where
        'a: 'f,
        Self: 'f,
    {
        Box::pin(self.send(request))
    }
}

/// Logs the first export failure of each [`ERROR_LOG_INTERVAL`], with the
/// number of failures since the last line: a down collector costs one line
/// a minute, not one per batch.
#[derive(Debug, Default)]
struct FailureLog {
    state: Mutex<FailureState>,
}

#[derive(Debug, Default)]
struct FailureState {
    last_logged: Option<Instant>,
    unlogged: u64,
}

impl FailureLog {
    fn record(&self, error: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.unlogged += 1;
        let due = state
            .last_logged
            .is_none_or(|at| at.elapsed() >= ERROR_LOG_INTERVAL);
        if due {
            let failures = std::mem::take(&mut state.unlogged);
            state.last_logged = Some(Instant::now());
            drop(state);
            tracing::warn!(
                error,
                failures,
                interval_s = ERROR_LOG_INTERVAL.as_secs(),
                "trace export failed (logged at most once per interval)"
            );
        }
    }
}
