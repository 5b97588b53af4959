//! JWKS key sets: fetched through the pooled client, refreshed in the
//! background, refreshed on demand for an unknown `kid` (rate limited), and
//! shared across reloads while their configuration is unchanged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Limited};
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::JwkSet;
use tokio::time::Instant;

use super::keys::KeySet;
use crate::body::empty;
use crate::config::JwksSource;
use crate::telemetry::metrics::JWKS_REFRESH_TOTAL;
use crate::upstream::UpstreamClient;

/// Largest JWKS document accepted.
const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Why a JWKS fetch failed (logged; never contains key material).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// No answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed or the server spoke invalid HTTP.
    #[error("request failed: {0}")]
    Request(String),
    /// The server answered with a non-200 status.
    #[error("answered {0}")]
    Status(http::StatusCode),
    /// The body is not a JWKS document (or is too large).
    #[error("not a JWKS document: {0}")]
    Invalid(String),
}

/// What identifies a shared key set: where it is fetched, how often, and the
/// algorithm restriction applied to its keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct JwksKey {
    pub(crate) source: JwksSource,
    pub(crate) algorithm: Option<Algorithm>,
}

/// One JWKS URL's last good key set and its refresh state.
pub struct JwksCache {
    key: JwksKey,
    client: UpstreamClient,
    keys: ArcSwapOption<KeySet>,
    last_error: Mutex<Option<String>>,
    /// When the last fetch started; also serialises fetches (single flight).
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for JwksCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksCache")
            .field("url", &self.key.source.url)
            .field("keys", &self.keys.load().as_ref().map(|k| k.len()))
            .finish_non_exhaustive()
    }
}

impl JwksCache {
    fn new(key: JwksKey, client: UpstreamClient) -> Self {
        Self {
            key,
            client,
            keys: ArcSwapOption::empty(),
            last_error: Mutex::new(None),
            last_attempt: tokio::sync::Mutex::new(None),
        }
    }

    /// The last good key set, `None` until one was fetched.
    pub fn current(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    /// Why the keys are not loaded, when they are not.
    pub(crate) fn not_loaded_reason(&self) -> Option<String> {
        if self.keys.load().is_some() {
            return None;
        }
        let error = self.last_error.lock().ok().and_then(|e| e.clone());
        Some(match error {
            Some(e) => format!("JWKS not loaded: {e}"),
            None => "JWKS not fetched yet".to_owned(),
        })
    }

    /// Fetches now unless a fetch started less than the minimum refresh
    /// interval ago (an unknown `kid` must not let clients flood the issuer).
    /// Concurrent callers wait for the one fetch in flight.
    pub async fn refresh_if_allowed(&self) {
        self.refresh(false).await;
    }

    async fn refresh(&self, force: bool) {
        let mut last = self.last_attempt.lock().await;
        if !force && last.is_some_and(|at| at.elapsed() < self.key.source.min_refresh_interval) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                metrics::counter!(JWKS_REFRESH_TOTAL, "result" => "success").increment(1);
                tracing::info!(url = %self.key.source.url, keys = set.len(), "JWKS refreshed");
                self.keys.store(Some(Arc::new(set)));
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
            }
            Err(error) => {
                metrics::counter!(JWKS_REFRESH_TOTAL, "result" => "failure").increment(1);
                tracing::warn!(
                    url = %self.key.source.url,
                    %error,
                    kept_previous_keys = self.keys.load().is_some(),
                    "JWKS refresh failed"
                );
                if let Ok(mut e) = self.last_error.lock() {
                    *e = Some(error.to_string());
                }
            }
        }
    }

    async fn fetch(&self) -> Result<KeySet, JwksError> {
        let timeout = self.key.source.timeout;
        let request = Request::builder()
            .method(Method::GET)
            .uri(self.key.source.url.clone())
            .header(header::ACCEPT, "application/json")
            .body(empty())
            .map_err(|e| JwksError::Request(e.to_string()))?;
        let work = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| JwksError::Request(e.to_string()))?;
            if response.status() != http::StatusCode::OK {
                return Err(JwksError::Status(response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_JWKS_BYTES)
                .collect()
                .await
                .map_err(|e| JwksError::Invalid(e.to_string()))?
                .to_bytes();
            let set: JwkSet =
                serde_json::from_slice(&body).map_err(|e| JwksError::Invalid(e.to_string()))?;
            Ok(KeySet::from_jwks(&set, self.key.algorithm))
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| JwksError::Timeout(timeout))?
    }
}

/// Fetches at start, then every refresh interval (every minimum interval
/// while no key set was ever loaded), until the last user drops the cache.
async fn refresh_loop(cache: Weak<JwksCache>) {
    loop {
        let wait = {
            let Some(cache) = cache.upgrade() else {
                return;
            };
            cache.refresh(true).await;
            let source = &cache.key.source;
            if cache.current().is_some() {
                source.refresh_interval
            } else {
                source.min_refresh_interval
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// The key sets alive, by configuration; each entry lives as long as a
/// configuration generation uses it, so a reload with the same JWKS settings
/// keeps the fetched keys and the refresh task.
#[derive(Debug, Default)]
pub(crate) struct JwksRegistry {
    caches: Mutex<HashMap<JwksKey, Weak<JwksCache>>>,
}

impl JwksRegistry {
    /// A new cache for `key`, not yet shared and not yet refreshed: a build
    /// creates it, and [`Self::adopt`] makes it live once the build commits.
    pub(crate) fn create(key: JwksKey, client: &UpstreamClient) -> Arc<JwksCache> {
        Arc::new(JwksCache::new(key, client.clone()))
    }

    /// Shares `cache` with later builds and starts its refresh task (which
    /// ends when the last generation using the cache is dropped).
    pub(crate) fn adopt(&self, cache: &Arc<JwksCache>) {
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        caches.retain(|_, weak| weak.strong_count() > 0);
        if caches.get(&cache.key).and_then(Weak::upgrade).is_some() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(refresh_loop(Arc::downgrade(cache)));
        }
        caches.insert(cache.key.clone(), Arc::downgrade(cache));
    }

    /// The live cache for `key`, if a generation uses one.
    pub(crate) fn get(&self, key: &JwksKey) -> Option<Arc<JwksCache>> {
        let caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        caches.get(key).and_then(Weak::upgrade)
    }
}
