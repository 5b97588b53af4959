//! Authorization: a policy engine (embedded Rego, OPA, OpenFGA) decides on
//! requests to buckets that configure one, with the verified claims as input.
//!
//! Runs right after authentication and before the cache.
//!
//! (Skeleton: a pass-through until the authorization work lands.)

use tower::Layer;

use crate::config::Config;
use crate::shared::Shared;
use crate::stack::BuildError;

/// State that survives reloads: decision caches keyed by their configuration.
#[derive(Debug, Default)]
pub struct AuthzShared {}

/// Asks the configured policy engine about each request to a bucket with one.
#[derive(Debug, Clone, Default)]
pub struct AuthzLayer {}

impl AuthzLayer {
    /// Builds the policy engines of one configuration generation.
    pub(crate) fn build(_config: &Config, _shared: &Shared) -> Result<Self, BuildError> {
        Ok(Self {})
    }
}

impl<S> Layer<S> for AuthzLayer {
    type Service = S;

    fn layer(&self, inner: S) -> S {
        inner
    }
}
