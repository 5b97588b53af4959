//! One bucket's policy: its engine, its decision cache, its fail mode and its
//! metric handles, and the decision procedure shared by every engine.

use std::cell::RefCell;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use metrics::Counter;

use super::input::InputDocument;
use super::opa::OpaEngine;
use super::openfga::OpenFgaEngine;
use super::remote::JsonPeer;
use super::{AuthzShared, DecisionCache, EngineError, RegoPolicy};
use crate::config::{AuthorizationConfig, FailMode, PolicyEngineConfig};
use crate::error::ProxyError;
use crate::telemetry::metrics::{AUTHZ_DECISION_CACHE_TOTAL, AUTHZ_DECISIONS_TOTAL};
use crate::upstream::UpstreamClient;

/// The 403 message when the policy says no.
const DENIED: &str = "the authorization policy denies this request";
/// The 403 message when OpenFGA cannot be asked: the request names no user.
const NO_USER: &str = "the request carries no user for the authorization check";

/// A configured engine, ready to decide.
#[derive(Debug)]
pub(crate) enum PolicyEngine {
    Rego(RegoPolicy),
    Opa(OpaEngine),
    OpenFga(OpenFgaEngine),
}

impl PolicyEngine {
    /// Builds the engine of `config`; `client` supplies the pooled HTTP client.
    pub(crate) fn build(
        config: &PolicyEngineConfig,
        client: &mut dyn FnMut() -> Result<UpstreamClient, String>,
    ) -> Result<Self, String> {
        Ok(match config {
            PolicyEngineConfig::Rego(rego) => Self::Rego(RegoPolicy::clone(&rego.policy)),
            PolicyEngineConfig::Opa(opa) => Self::Opa(OpaEngine {
                peer: JsonPeer {
                    client: client()?,
                    uri: opa.url.clone(),
                    authorization: None,
                    timeout: opa.timeout,
                },
            }),
            PolicyEngineConfig::OpenFga(fga) => {
                let base = fga.endpoint.to_string();
                let uri = format!(
                    "{}/stores/{}/check",
                    base.trim_end_matches('/'),
                    fga.store_id
                )
                .parse()
                .map_err(|e| format!("the check URL is invalid: {e}"))?;
                let authorization = match &fga.api_token {
                    Some(token) => {
                        let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
                            .map_err(|_| "api_token is not a valid header value".to_owned())?;
                        value.set_sensitive(true);
                        Some(value)
                    }
                    None => None,
                };
                Self::OpenFga(OpenFgaEngine {
                    peer: JsonPeer {
                        client: client()?,
                        uri,
                        authorization,
                        timeout: fga.timeout,
                    },
                    authorization_model_id: fga.authorization_model_id.clone(),
                    user_claim: fga.user_claim.split('.').map(str::to_owned).collect(),
                    object: fga.object.clone(),
                    relation: fga.relation.clone(),
                })
            }
        })
    }

    /// The bytes this engine decides on for `input`; `None` when the request
    /// cannot be asked about (no user for OpenFGA).
    pub(crate) fn query(&self, input: &InputDocument<'_>) -> Option<Vec<u8>> {
        match self {
            Self::Rego(_) => Some(input.to_json()),
            Self::Opa(_) => Some(OpaEngine::query(&input.to_json())),
            Self::OpenFga(fga) => fga.query(input),
        }
    }

    /// Asks the engine.
    pub(crate) async fn decide(&self, query: &[u8]) -> Result<bool, EngineError> {
        match self {
            Self::Rego(policy) => policy.evaluate(query),
            Self::Opa(opa) => opa.decide(query).await,
            Self::OpenFga(fga) => fga.decide(query).await,
        }
    }
}

/// The counters one bucket's decisions update, registered once per build.
#[derive(Debug)]
struct DecisionMetrics {
    allow: Counter,
    deny: Counter,
    error: Counter,
    cache_hit: Counter,
    cache_miss: Counter,
}

impl DecisionMetrics {
    fn new(bucket: &Arc<str>, engine: &'static str) -> Self {
        let decision = |result: &'static str| {
            metrics::counter!(AUTHZ_DECISIONS_TOTAL, "bucket" => bucket.to_string(),
                "engine" => engine, "result" => result)
        };
        let cache = |result: &'static str| metrics::counter!(AUTHZ_DECISION_CACHE_TOTAL, "engine" => engine, "result" => result);
        Self {
            allow: decision("allow"),
            deny: decision("deny"),
            error: decision("error"),
            cache_hit: cache("hit"),
            cache_miss: cache("miss"),
        }
    }
}

thread_local! {
    /// Where decision-cache keys are built; reused, so a hit allocates nothing.
    static KEY_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(1024));
}

/// What the decision cache knows about a request.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The decision cached for the request (allow or deny).
    Cached(bool),
    /// Not cached: the engine must be asked.
    Ask {
        /// Where to cache the decision (`None`: the request is too large to cache).
        key: Option<Vec<u8>>,
        /// What to ask the engine (`None`: nothing to ask, so deny).
        query: Option<Vec<u8>>,
    },
}

/// Everything needed to decide on one bucket's requests.
#[derive(Debug)]
pub(crate) struct BucketPolicy {
    bucket: Arc<str>,
    engine_name: &'static str,
    engine: PolicyEngine,
    cache: Arc<DecisionCache>,
    fail: FailMode,
    metrics: DecisionMetrics,
    /// Headers the bucket takes tokens from, kept out of the input.
    token_headers: Vec<HeaderName>,
}

impl BucketPolicy {
    /// Builds the policy of `bucket`, reusing a live decision cache of the same identity.
    pub(crate) fn build(
        bucket: Arc<str>,
        config: &AuthorizationConfig,
        token_headers: Vec<HeaderName>,
        shared: &AuthzShared,
        client: &mut dyn FnMut() -> Result<UpstreamClient, String>,
    ) -> Result<Self, String> {
        let engine = PolicyEngine::build(&config.engine, client)?;
        let engine_name = config.engine.name();
        Ok(Self {
            metrics: DecisionMetrics::new(&bucket, engine_name),
            cache: shared.cache_for(config),
            bucket,
            engine_name,
            engine,
            fail: config.fail,
            token_headers,
        })
    }

    /// The bucket's name (the policy input's `bucket`).
    pub(crate) fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Headers the bucket takes tokens from (never part of the input).
    pub(crate) fn token_headers(&self) -> &[HeaderName] {
        &self.token_headers
    }

    /// The cached decision for a request, or what to ask the engine. Only a
    /// miss pays for the engine's query: for Rego and OPA the cache key is the
    /// cheap [`InputDocument::cache_key`]; for OpenFGA the check request is
    /// small and all the engine sees, so it is its own key.
    pub(crate) fn lookup(&self, input: &InputDocument<'_>) -> Lookup {
        if let PolicyEngine::OpenFga(fga) = &self.engine {
            let query = fga.query(input);
            return match query.as_deref().and_then(|q| self.cached(q)) {
                Some(allowed) => Lookup::Cached(allowed),
                None => Lookup::Ask {
                    key: query.clone(),
                    query,
                },
            };
        }
        let look = |buffer: &mut Vec<u8>| {
            if !input.write_cache_key(buffer) {
                return Err(None);
            }
            match self.cached(buffer) {
                Some(allowed) => Ok(allowed),
                None => Err(Some(buffer.clone())),
            }
        };
        // One key buffer per thread, so a cache hit allocates nothing (a
        // fresh one if the thread's is unavailable: never a panic).
        let found = KEY_BUFFER
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut buffer) => look(&mut buffer),
                Err(_) => look(&mut Vec::new()),
            })
            .unwrap_or_else(|_| look(&mut Vec::new()));
        match found {
            Ok(allowed) => Lookup::Cached(allowed),
            Err(key) => Lookup::Ask {
                key,
                query: self.engine.query(input),
            },
        }
    }

    /// The cached decision under `key`, counting the lookup (and the decision on a hit).
    fn cached(&self, key: &[u8]) -> Option<bool> {
        match self.cache.get(key) {
            Some(allowed) => {
                self.metrics.cache_hit.increment(1);
                if allowed {
                    self.metrics.allow.increment(1);
                } else {
                    self.metrics.deny.increment(1);
                }
                Some(allowed)
            }
            None => {
                self.metrics.cache_miss.increment(1);
                None
            }
        }
    }

    /// The verdict for a request that missed the cache: the engine decides
    /// on `query`, and the decision is cached under `key`.
    pub(crate) async fn decide(
        &self,
        key: Option<&[u8]>,
        query: Option<&[u8]>,
    ) -> Result<(), ProxyError> {
        let Some(query) = query else {
            self.metrics.deny.increment(1);
            tracing::debug!(bucket = %self.bucket, engine = self.engine_name, "authorization denied: no user to check");
            return Err(ProxyError::Forbidden(NO_USER));
        };
        match self.engine.decide(query).await {
            Ok(allowed) => {
                if let Some(key) = key {
                    self.cache.insert(key, allowed);
                }
                self.verdict(allowed)
            }
            Err(error) => {
                self.metrics.error.increment(1);
                match self.fail {
                    FailMode::Closed => {
                        tracing::warn!(bucket = %self.bucket, engine = self.engine_name, %error,
                            "authorization engine failed; refusing the request (fail: closed)");
                        Err(ProxyError::AuthorizationUnavailable(format!(
                            "{} {error}",
                            self.engine_name
                        )))
                    }
                    FailMode::Open => {
                        tracing::warn!(bucket = %self.bucket, engine = self.engine_name, %error,
                            "authorization engine failed; allowing the request (fail: open)");
                        Ok(())
                    }
                }
            }
        }
    }

    /// Counts a fresh decision and turns it into the request's fate.
    pub(crate) fn verdict(&self, allowed: bool) -> Result<(), ProxyError> {
        if allowed {
            self.metrics.allow.increment(1);
            Ok(())
        } else {
            self.metrics.deny.increment(1);
            tracing::debug!(bucket = %self.bucket, engine = self.engine_name, "authorization denied by policy");
            Err(ProxyError::Forbidden(DENIED))
        }
    }

    /// The 403 for a cached "deny" (already counted by [`Self::cached`]).
    pub(crate) fn denied() -> ProxyError {
        ProxyError::Forbidden(DENIED)
    }
}
