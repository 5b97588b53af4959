//! Opens the slower tiers (disk, Redis) the configuration lists.
//!
//! The disk tier scans its directory now (so a bad `cache_dir` fails the
//! build with its path). The Redis tier never connects here: Redis may be
//! down at startup; every operation connects on demand. Its pool must be
//! created inside a Tokio runtime; outside one (`yatagarasu check`) a
//! short-lived runtime hosts the construction and no purge subscription is
//! started (nothing is served).

use std::sync::Arc;

use super::CacheTier;
use super::disk::DiskTier;
use super::redis::RedisTier;
use crate::build::BuildError;
use crate::config::CacheConfig;

/// The slower tiers, plus the Redis tier by its type (purge broadcast).
#[derive(Debug, Default)]
pub(crate) struct SlowerTiers {
    pub(crate) tiers: Vec<Arc<dyn CacheTier>>,
    pub(crate) redis: Option<Arc<RedisTier>>,
}

/// Opens every slower tier `config` lists.
pub(crate) fn open(config: &CacheConfig) -> Result<SlowerTiers, BuildError> {
    let mut opened = SlowerTiers::default();
    if let Some(disk) = &config.disk {
        // Entries are kept past their TTL as long as they may be served stale.
        let tier =
            DiskTier::open_blocking(disk, config.stale_if_error).map_err(|e| BuildError {
                path: "cache.disk.cache_dir".into(),
                message: format!("cannot open the disk cache: {e}"),
            })?;
        opened.tiers.push(Arc::new(tier));
    }
    if let Some(redis) = &config.redis {
        let build = || RedisTier::new(redis);
        let tier = match tokio::runtime::Handle::try_current() {
            Ok(_) => build(),
            Err(_) => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| crate::cache::TierError::Redis(e.to_string()))
                .and_then(|runtime| {
                    let _entered = runtime.enter();
                    build()
                }),
        }
        .map_err(|e| BuildError {
            path: "cache.redis".into(),
            message: e.to_string(),
        })?;
        let tier = Arc::new(tier);
        opened.tiers.push(tier.clone());
        opened.redis = Some(tier);
    }
    Ok(opened)
}
