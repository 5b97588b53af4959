//! The response cache: memory, disk and Redis tiers behind one tower layer.
//!
//! Sits after authentication and authorization (only authorized requests
//! read cached bytes) and before the S3 request is built. The store lives in
//! [`CacheShared`], outside the per-configuration stack, so reloads keep it.
//!
//! (Skeleton: a pass-through until the cache work lands.)

pub mod admin;
pub mod codec;
pub mod disk;
pub mod entry;
pub mod key;
pub mod policy;
pub mod redis;
pub mod serve;
pub mod tier;

pub use entry::{CachedObject, ObjectMeta};
pub use key::CacheKey;
pub use tier::{CacheTier, PurgeScope, TierError, TierFuture, TierStats};

use tower::Layer;

use crate::config::Config;
use crate::shared::Shared;
use crate::stack::BuildError;

/// The cache store and its tiers; survives reloads.
#[derive(Debug, Default)]
pub struct CacheShared {}

/// Serves GET and HEAD from the cache and fills it from S3's answers.
#[derive(Debug, Clone, Default)]
pub struct CacheLayer {}

impl CacheLayer {
    /// Builds the cache layer of one configuration generation.
    pub(crate) fn build(_config: &Config, _shared: &Shared) -> Result<Self, BuildError> {
        Ok(Self {})
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = S;

    fn layer(&self, inner: S) -> S {
        inner
    }
}
