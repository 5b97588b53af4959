//! One JSON `POST` to a policy service (OPA, OpenFGA) over the proxy's pooled
//! client, bounded in time and in answer size.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::{BodyExt, Limited};

use super::EngineError;
use crate::body::full;
use crate::upstream::UpstreamClient;

/// Largest answer read from a policy service.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where and how to send the queries of one engine.
#[derive(Clone)]
pub(crate) struct JsonPeer {
    pub(crate) client: UpstreamClient,
    pub(crate) uri: http::Uri,
    /// `Bearer <token>`, marked sensitive so it is never logged by hyper.
    pub(crate) authorization: Option<HeaderValue>,
    pub(crate) timeout: Duration,
}

impl std::fmt::Debug for JsonPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonPeer")
            .field("uri", &self.uri)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl JsonPeer {
    /// Posts `body` and parses the JSON answer of a 2xx response.
    pub(crate) async fn post(&self, body: Bytes) -> Result<serde_json::Value, EngineError> {
        tokio::time::timeout(self.timeout, self.exchange(body))
            .await
            .map_err(|_| EngineError::Timeout(self.timeout))?
    }

    async fn exchange(&self, body: Bytes) -> Result<serde_json::Value, EngineError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json")
            .body(full(body))
            .map_err(|e| EngineError::Unreachable(e.to_string()))?;
        if let Some(value) = &self.authorization {
            request
                .headers_mut()
                .insert(header::AUTHORIZATION, value.clone());
        }
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| EngineError::Unreachable(error_chain(&e)))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| EngineError::UnexpectedAnswer(format!("reading the answer: {e}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(EngineError::Status(status));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| EngineError::UnexpectedAnswer(format!("the answer is not JSON: {e}")))
    }
}

/// The error and its sources, for a log line (`connect: connection refused`).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
