use std::sync::Arc;

use tower::Layer;

use super::key_sets::KeySets;
use super::metrics::AuthCounters;
use super::service::Auth;
use super::token_source::query_names;
use super::verifier::JwtVerifier;
use crate::build::{BuildError, Staging};
use crate::config::{BucketConfig, TokenSource};

/// Everything needed to authenticate requests to one private bucket.
#[derive(Debug)]
pub(crate) struct BucketAuth {
    pub(crate) verifier: JwtVerifier,
    pub(crate) sources: Vec<TokenSource>,
    /// Query parameters that carry tokens: removed before anything else sees them.
    pub(crate) query_names: Vec<String>,
    pub(crate) counters: AuthCounters,
}

/// Verifies tokens for one private bucket; public buckets have no such layer.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    bucket: Arc<BucketAuth>,
}

impl AuthLayer {
    /// The layer of bucket `bucket` (at configuration path `at`), or `None`
    /// when the bucket is public. JWKS key sets come from `keys`.
    pub(crate) fn for_bucket(
        bucket: &BucketConfig,
        keys: &mut KeySets<'_>,
        staging: &mut Staging<'_>,
        at: &str,
    ) -> Result<Option<Self>, BuildError> {
        let (true, Some(jwt)) = (bucket.auth.enabled, &bucket.auth.jwt) else {
            return Ok(None);
        };
        let verifier = keys.verifier(jwt, staging, &format!("{at}.auth.jwt"))?;
        keys.watch(&bucket.name, &verifier);
        Ok(Some(Self {
            bucket: Arc::new(BucketAuth {
                verifier,
                query_names: query_names(&jwt.token_sources),
                sources: jwt.token_sources.clone(),
                counters: AuthCounters::new(&bucket.name),
            }),
        }))
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            bucket: self.bucket.clone(),
        }
    }
}
