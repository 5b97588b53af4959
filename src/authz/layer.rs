use std::sync::Arc;

use http::HeaderName;
use tower::Layer;

use super::policy::BucketPolicy;
use super::{AuthzService, AuthzShared};
use crate::build::BuildError;
use crate::config::{AuthConfig, BucketConfig, TokenSource};
use crate::upstream::UpstreamClient;

/// Asks a bucket's policy engine about each of its requests; buckets
/// without `auth.authorization` have no such layer.
#[derive(Debug, Clone)]
pub struct AuthzLayer {
    policy: Arc<BucketPolicy>,
}

impl AuthzLayer {
    /// The layer of `bucket` (at configuration path `at`), or `None` when it
    /// has no policy. A Rego policy arrives compiled with the configuration
    /// (a file that does not compile fails the load, so a reload keeps the
    /// previous stack); decision caches are taken over from `engines` when
    /// their configuration is unchanged.
    /// `client` gives the pooled client of the remote engines (asked for
    /// only when the engine is remote, so the build records the pool as used).
    pub fn for_bucket(
        bucket: &BucketConfig,
        engines: &AuthzShared,
        client: &mut dyn FnMut() -> Result<UpstreamClient, String>,
        at: &str,
    ) -> Result<Option<Self>, BuildError> {
        let Some(authorization) = &bucket.auth.authorization else {
            return Ok(None);
        };
        let policy = BucketPolicy::build(
            Arc::from(bucket.name.as_str()),
            authorization,
            token_headers(&bucket.auth),
            engines,
            client,
        )
        .map_err(|message| BuildError::new(format!("{at}.auth.authorization"), message))?;
        Ok(Some(Self {
            policy: Arc::new(policy),
        }))
    }
}

/// The custom headers a bucket reads tokens from.
fn token_headers(auth: &AuthConfig) -> Vec<HeaderName> {
    auth.jwt
        .iter()
        .flat_map(|jwt| jwt.token_sources.iter())
        .filter_map(|source| match source {
            TokenSource::Header { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

impl<S> Layer<S> for AuthzLayer {
    type Service = AuthzService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthzService {
            inner,
            policy: self.policy.clone(),
        }
    }
}
