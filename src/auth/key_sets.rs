//! The JWKS key sets one build uses: live ones are shared, new ones only go
//! live (registered, refreshed, reported by `/ready`) when the build commits.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use super::AuthShared;
use super::jwks::{JwksCache, JwksKey, JwksRegistry};
use super::verifier::JwtVerifier;
use crate::build::{BuildError, Staging};
use crate::config::{JwtConfig, KeySource, UpstreamConfig};

/// The key sets of one build, staged until it commits.
pub(crate) struct KeySets<'a> {
    registry: &'a JwksRegistry,
    upstream: &'a UpstreamConfig,
    created: HashMap<JwksKey, Arc<JwksCache>>,
    /// Buckets `/ready` reports while their keys are not loaded.
    watched: Vec<(String, Weak<JwksCache>)>,
}

impl<'a> KeySets<'a> {
    /// Key sets shared through `shared`, fetched with pools built from `upstream`.
    pub(crate) fn new(shared: &'a AuthShared, upstream: &'a UpstreamConfig) -> Self {
        Self {
            registry: &shared.jwks,
            upstream,
            created: HashMap::new(),
            watched: Vec::new(),
        }
    }

    /// The verifier for one `jwt:` section (`at` is its configuration path).
    pub(crate) fn verifier(
        &mut self,
        jwt: &JwtConfig,
        staging: &mut Staging<'_>,
        at: &str,
    ) -> Result<JwtVerifier, BuildError> {
        match &jwt.keys {
            KeySource::Static(_) => JwtVerifier::from_static_config(jwt)
                .ok_or_else(|| BuildError::new(at, "no static keys")),
            KeySource::Jwks { source, algorithm } => {
                let key = JwksKey {
                    source: source.clone(),
                    algorithm: *algorithm,
                };
                let cache = self.cache(key, staging, &format!("{at}.jwks_url"))?;
                Ok(JwtVerifier::with_jwks(jwt, cache))
            }
        }
    }

    /// The live cache for `key`, or one created for this build.
    fn cache(
        &mut self,
        key: JwksKey,
        staging: &mut Staging<'_>,
        at: &str,
    ) -> Result<Arc<JwksCache>, BuildError> {
        // Asked for even when the cache is reused, so this generation
        // records the pool as in use and the commit keeps it.
        let client = staging
            .client(self.upstream, None)
            .map_err(|e| BuildError::new(at, e))?;
        if let Some(cache) = self.registry.get(&key) {
            return Ok(cache);
        }
        let cache = self
            .created
            .entry(key)
            .or_insert_with_key(|key| JwksRegistry::create(key.clone(), &client));
        Ok(cache.clone())
    }

    /// Reports `bucket` as not ready while `verifier`'s JWKS keys are not loaded.
    pub(crate) fn watch(&mut self, bucket: &str, verifier: &JwtVerifier) {
        if let Some(cache) = verifier.jwks() {
            self.watched
                .push((bucket.to_owned(), Arc::downgrade(cache)));
        }
    }

    /// Stages the commit: the new key sets are shared and start refreshing,
    /// and `/ready` reports the watched buckets of this generation.
    pub(crate) fn stage(self, staging: &mut Staging<'_>) {
        let created: Vec<Arc<JwksCache>> = self.created.into_values().collect();
        let watched = self.watched;
        staging.on_commit(move |shared| {
            for cache in &created {
                shared.auth.jwks.adopt(cache);
            }
            shared
                .readiness
                .set_key_status(Arc::new(move || not_loaded(&watched)));
        });
    }
}

/// The watched buckets whose keys are not loaded, with why.
fn not_loaded(watched: &[(String, Weak<JwksCache>)]) -> BTreeMap<String, String> {
    watched
        .iter()
        .filter_map(|(name, cache)| {
            let reason = cache.upgrade()?.not_loaded_reason()?;
            Some((name.clone(), reason))
        })
        .collect()
}
