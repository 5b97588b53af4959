//! Authentication: JWT verification for private buckets and the admin API.
//!
//! Sits after routing (it needs the resolved bucket) and before the cache, so
//! only authenticated requests ever reach cached bytes. The verified claims
//! travel to later layers as a [`VerifiedClaims`] request extension.
//!
//! (Skeleton: a pass-through until the authentication work lands.)

pub mod admin;

use std::sync::Arc;

use tower::Layer;

use crate::config::Config;
use crate::shared::Shared;
use crate::stack::BuildError;

/// The verified token's claims, for the layers after authentication
/// (authorization, rate limiting by user, audit logging).
#[derive(Debug, Clone)]
pub struct VerifiedClaims {
    /// The `sub` claim, when present.
    pub subject: Option<String>,
    /// The `kid` of the key that verified the token, when it had one.
    pub key_id: Option<String>,
    /// Every claim of the token.
    pub claims: Arc<serde_json::Map<String, serde_json::Value>>,
}

/// State that survives reloads: JWKS key sets keyed by their configuration.
#[derive(Debug, Default)]
pub struct AuthShared {}

/// Verifies tokens for the buckets that require them.
#[derive(Debug, Clone, Default)]
pub struct AuthLayer {}

impl AuthLayer {
    /// Builds the verifiers of one configuration generation.
    pub(crate) fn build(_config: &Config, _shared: &Shared) -> Result<Self, BuildError> {
        Ok(Self {})
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = S;

    fn layer(&self, inner: S) -> S {
        inner
    }
}
