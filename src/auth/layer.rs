use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};

use tower::Layer;

use super::jwks::{JwksCache, JwksKey};
use super::metrics::AuthCounters;
use super::service::Auth;
use super::token_source::query_names;
use super::verifier::JwtVerifier;
use crate::config::{Config, JwtConfig, KeySource, TokenSource};
use crate::shared::{ClientUse, Shared};
use crate::stack::BuildError;

/// Everything needed to authenticate requests to one private bucket.
#[derive(Debug)]
pub(crate) struct BucketAuth {
    pub(crate) verifier: JwtVerifier,
    pub(crate) sources: Vec<TokenSource>,
    /// Query parameters that carry tokens: removed before anything else sees them.
    pub(crate) query_names: Vec<String>,
    pub(crate) counters: AuthCounters,
}

/// The verifiers of one configuration generation.
#[derive(Debug, Default)]
pub(crate) struct AuthState {
    /// Private buckets by name; a bucket not listed is public.
    pub(crate) buckets: HashMap<Arc<str>, Arc<BucketAuth>>,
    /// Keeps the admin JWKS cache alive (and refreshed) with this generation.
    _admin_jwks: Option<Arc<JwksCache>>,
}

/// Verifies tokens for the buckets that require them.
#[derive(Debug, Clone, Default)]
pub struct AuthLayer {
    state: Arc<AuthState>,
}

impl AuthLayer {
    /// Builds the verifiers of one configuration generation; JWKS caches are
    /// reused from `shared` when their configuration did not change.
    /// The JWKS fetchers' connection pools are recorded in `clients`, so
    /// reloads keep them.
    pub(crate) fn build(
        config: &Config,
        shared: &Shared,
        clients: &mut ClientUse,
    ) -> Result<Self, BuildError> {
        let mut buckets = HashMap::new();
        let mut pending: Vec<(String, Weak<JwksCache>)> = Vec::new();
        for (i, bucket) in config.buckets.iter().enumerate() {
            let (true, Some(jwt)) = (bucket.auth.enabled, &bucket.auth.jwt) else {
                continue;
            };
            let verifier = verifier(
                config,
                shared,
                clients,
                jwt,
                &format!("buckets[{i}].auth.jwt.jwks_url"),
            )?;
            if let Some(cache) = verifier.jwks() {
                pending.push((bucket.name.clone(), Arc::downgrade(cache)));
            }
            buckets.insert(
                Arc::from(bucket.name.as_str()),
                Arc::new(BucketAuth {
                    verifier,
                    query_names: query_names(&jwt.token_sources),
                    sources: jwt.token_sources.clone(),
                    counters: AuthCounters::new(&bucket.name),
                }),
            );
        }
        let admin_jwks = match &config.admin.jwt {
            Some(admin) => verifier(config, shared, clients, &admin.jwt, "admin.jwt.jwks_url")?
                .jwks()
                .cloned(),
            None => None,
        };
        shared.readiness.set_key_status(Arc::new(move || {
            pending
                .iter()
                .filter_map(|(name, cache)| {
                    let reason = cache.upgrade()?.not_loaded_reason()?;
                    Some((name.clone(), reason))
                })
                .collect::<BTreeMap<_, _>>()
        }));
        Ok(Self {
            state: Arc::new(AuthState {
                buckets,
                _admin_jwks: admin_jwks,
            }),
        })
    }
}

/// The verifier for one `jwt:` section, sharing JWKS caches through `shared`.
pub(crate) fn verifier(
    config: &Config,
    shared: &Shared,
    clients: &mut ClientUse,
    jwt: &JwtConfig,
    at: &str,
) -> Result<JwtVerifier, BuildError> {
    match &jwt.keys {
        KeySource::Static(_) => JwtVerifier::from_static_config(jwt).ok_or_else(|| BuildError {
            path: at.to_owned(),
            message: "no static keys".to_owned(),
        }),
        KeySource::Jwks { source, algorithm } => {
            let key = JwksKey {
                source: source.clone(),
                algorithm: *algorithm,
            };
            // Asked for even when the cache is reused, so this generation
            // records the pool as in use and the reload keeps it.
            let client = shared
                .client(&config.upstream, None, clients)
                .map_err(|e| BuildError {
                    path: at.to_owned(),
                    message: e.to_string(),
                })?;
            let cache = match shared.auth.jwks.get(&key) {
                Some(cache) => cache,
                None => shared.auth.jwks.get_or_create(key, &client),
            };
            Ok(JwtVerifier::with_jwks(jwt, cache))
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            state: self.state.clone(),
        }
    }
}
