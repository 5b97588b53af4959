use std::sync::Arc;

use http::HeaderName;
use tower::Layer;

use super::{RequestLog, RequestLogConfig};
use crate::config::{Config, TokenSource};

/// Logs requests and responses as `observability.request_logging` says
/// (see the module docs).
#[derive(Debug, Clone)]
pub struct RequestLogLayer {
    config: Arc<RequestLogConfig>,
}

impl RequestLogLayer {
    /// The layer for `config`, or `None` when request logging is off. The
    /// headers any bucket reads a token from are redacted too.
    pub fn new(config: &Config) -> Option<Self> {
        let mut settings = config.observability.request_logging.clone()?;
        for name in token_headers(config) {
            if !settings.redacted.contains(&name) {
                settings.redacted.push(name);
            }
        }
        Some(Self {
            config: Arc::new(settings),
        })
    }
}

/// The custom headers buckets take tokens from (`token_sources` of type
/// header); bearer tokens and cookies are in the always-redacted headers.
fn token_headers(config: &Config) -> impl Iterator<Item = HeaderName> + '_ {
    let sources = config
        .buckets
        .iter()
        .filter_map(|bucket| bucket.auth.jwt.as_ref())
        .flat_map(|jwt| jwt.token_sources.iter());
    sources.filter_map(|source| match source {
        TokenSource::Header { name, .. } => Some(name.clone()),
        _ => None,
    })
}

impl<S> Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestLog {
            inner,
            config: self.config.clone(),
        }
    }
}
