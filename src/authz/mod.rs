//! Authorization: a policy engine (embedded Rego, OPA, OpenFGA) decides on
//! requests to buckets that configure one, with the verified claims as input.
//!
//! Runs right after authentication and before the cache, so a cached object
//! is only ever served to a request its policy allows. Buckets without
//! `auth.authorization` pass straight through.
//!
//! Per request: the [`InputDocument`] is serialised once (for OpenFGA, the
//! check tuple is built instead); the bytes are looked up in the engine's
//! [`DecisionCache`]; on a miss the engine decides (Rego in-process, OPA and
//! OpenFGA over the pooled HTTP client with a timeout) and the decision is
//! cached. Allow passes the request on; deny is 403; an engine failure is 503
//! with `fail: closed` (the default) or an allow with a warning with
//! `fail: open`. Every outcome is counted in
//! `yatagarasu_authz_decisions_total{bucket,engine,result}` and every cache
//! lookup in `yatagarasu_authz_decision_cache_total{engine,result}`.

pub mod config;
mod decision_cache;
mod input;
mod layer;
mod opa;
mod openfga;
mod policy;
mod rego;
mod remote;
mod service;

pub use decision_cache::DecisionCache;
pub use input::{InputDocument, PolicyHeaders};
pub use layer::AuthzLayer;
pub use rego::{RegoLoadError, RegoPolicy};
pub use service::{AuthzService, ResponseFuture};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use http::StatusCode;

use crate::config::AuthorizationConfig;

/// State that survives reloads: decision caches keyed by their configuration.
///
/// A reload whose engine configuration (and, for Rego, policy text) is
/// unchanged keeps that engine's cache warm; a changed one starts empty. A
/// cache lives while any configuration generation still uses it.
#[derive(Debug, Default)]
pub struct AuthzShared {
    /// Keyed by the whole engine configuration (derived `Hash`/`Eq`; a
    /// Rego policy compares by its path, query and text).
    caches: Mutex<HashMap<AuthorizationConfig, Weak<DecisionCache>>>,
}

impl AuthzShared {
    /// The cache for an engine configuration, reused when a live one exists.
    pub(crate) fn cache_for(&self, config: &AuthorizationConfig) -> Arc<DecisionCache> {
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        caches.retain(|_, cache| cache.strong_count() > 0);
        if let Some(cache) = caches.get(config).and_then(Weak::upgrade) {
            return cache;
        }
        let cache = Arc::new(DecisionCache::new(
            config.cache_max_entries,
            config.positive_ttl,
            config.negative_ttl,
        ));
        caches.insert(config.clone(), Arc::downgrade(&cache));
        cache
    }

    /// How many decision caches are alive (for tests and diagnostics).
    pub fn decision_caches(&self) -> usize {
        let caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        caches.values().filter(|c| c.strong_count() > 0).count()
    }
}

/// Why a policy engine could not decide.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No connection, or the connection broke.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// No complete answer within the configured timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The service answered with an error status.
    #[error("answered HTTP {0}")]
    Status(StatusCode),
    /// The answer was not one of the documented shapes.
    #[error("unexpected answer: {0}")]
    UnexpectedAnswer(String),
    /// The embedded policy failed while evaluating.
    #[error("evaluation failed: {0}")]
    Evaluation(String),
}
