//! State that outlives configuration reloads.
//!
//! Connection pools, JWKS key sets, policy decision caches, the response
//! cache and rate limiters' budgets are expensive (or unfair) to rebuild, so each build takes them from here by
//! handle (see [`crate::build::Staging`]) and a reload keeps what the new
//! generation still uses.

use std::sync::Arc;

use tokio::time::Instant;

use crate::auth::AuthShared;
use crate::authz::AuthzShared;
use crate::breaker::BreakerRegistry;
use crate::build::Pools;
use crate::cache::CacheShared;
use crate::health::Readiness;
use crate::rate_limit::RateLimitShared;
use crate::upstream::LeafService;

/// Everything the proxy keeps across reloads.
pub struct Shared {
    /// One pooled client per distinct trust configuration.
    pub(crate) pools: Pools,
    /// Backend probe results and the shutdown flag.
    pub readiness: Arc<Readiness>,
    /// When the process (or embedding) started, for `/health` uptime.
    pub started: Instant,
    /// Replaces the pooled client at the bottom of every stack, when set.
    pub(crate) leaf: Option<LeafService>,
    /// JWKS key sets, kept while their configuration is unchanged.
    pub auth: AuthShared,
    /// Policy decision caches, kept while their configuration is unchanged.
    pub authz: AuthzShared,
    /// The response cache and its tiers.
    pub cache: CacheShared,
    /// Rate limiters, kept (with their clients' budgets) while their settings are unchanged.
    pub rate_limit: RateLimitShared,
    /// Circuit breakers, kept while their target and settings are unchanged.
    pub breakers: BreakerRegistry,
}

impl Default for Shared {
    fn default() -> Self {
        Self {
            pools: Pools::default(),
            readiness: Arc::new(Readiness::default()),
            started: Instant::now(),
            leaf: None,
            auth: AuthShared::default(),
            authz: AuthzShared::default(),
            cache: CacheShared::default(),
            rate_limit: RateLimitShared::default(),
            breakers: BreakerRegistry::default(),
        }
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("client_pools", &self.client_pools())
            .field("custom_leaf", &self.leaf.is_some())
            .finish_non_exhaustive()
    }
}

impl Shared {
    /// How many distinct connection pools exist (for tests and diagnostics).
    pub fn client_pools(&self) -> usize {
        self.pools.len()
    }
}
