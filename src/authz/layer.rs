use std::collections::HashMap;
use std::sync::Arc;

use tower::Layer;

use super::AuthzService;
use super::policy::BucketPolicy;
use http::HeaderName;

use crate::config::{AuthConfig, Config, TokenSource};
use crate::shared::{ClientUse, Shared};
use crate::stack::BuildError;
use crate::upstream::UpstreamClient;

/// Asks the configured policy engine about each request to a bucket with one.
#[derive(Debug, Clone, Default)]
pub struct AuthzLayer {
    policies: Arc<HashMap<Arc<str>, Arc<BucketPolicy>>>,
}

impl AuthzLayer {
    /// Builds the policy engines of one configuration generation: Rego
    /// policies are read and compiled here (a policy error fails the build,
    /// so a reload keeps the previous stack), and decision caches are taken
    /// over from `shared` when their configuration is unchanged.
    pub fn build(config: &Config, shared: &Shared) -> Result<Self, BuildError> {
        let mut pooled: Option<UpstreamClient> = None;
        let mut client = || -> Result<UpstreamClient, String> {
            if let Some(client) = &pooled {
                return Ok(client.clone());
            }
            // The policy services share the default pool (no private CA).
            let client = shared
                .client(&config.upstream, None, &mut ClientUse::default())
                .map_err(|e| e.to_string())?;
            pooled = Some(client.clone());
            Ok(client)
        };
        let mut policies = HashMap::new();
        for (i, bucket) in config.buckets.iter().enumerate() {
            let Some(authorization) = &bucket.auth.authorization else {
                continue;
            };
            let name: Arc<str> = Arc::from(bucket.name.as_str());
            let policy = BucketPolicy::build(
                name.clone(),
                authorization,
                token_headers(&bucket.auth),
                &shared.authz,
                &mut client,
            )
            .map_err(|message| BuildError {
                path: format!("buckets[{i}].auth.authorization"),
                message,
            })?;
            policies.insert(name, Arc::new(policy));
        }
        Ok(Self {
            policies: Arc::new(policies),
        })
    }

    /// Whether any bucket has a policy.
    pub fn is_active(&self) -> bool {
        !self.policies.is_empty()
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
            policies: self.policies.clone(),
        }
    }
}
