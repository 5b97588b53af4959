//! The limiters of one configuration generation, and the live ones a reload
//! takes over when their settings did not change (so a reload every few
//! seconds does not hand every client a fresh burst).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::config::RateLimitConfig;
use super::layer::{ClientRateLimitLayer, UserRateLimitLayer};
use super::limiter::{KeyedLimit, SharedLimit, UserLimit};
use crate::build::Staging;
use crate::config::{BucketConfig, Config};

/// Every limiter of one generation.
#[derive(Debug, Clone, Default)]
struct Limiters {
    global: Option<Arc<SharedLimit>>,
    per_ip: Option<Arc<KeyedLimit<IpAddr>>>,
    /// By bucket name.
    buckets: HashMap<String, Arc<SharedLimit>>,
    /// By bucket name.
    users: HashMap<String, Arc<UserLimit>>,
}

/// The limiters of the generation in force: state that outlives reloads.
#[derive(Debug, Default)]
pub struct RateLimitShared {
    live: Mutex<Limiters>,
}

impl RateLimitShared {
    fn lock(&self) -> MutexGuard<'_, Limiters> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The limiters of a generation being built, from which each bucket's
/// layers are made.
#[derive(Debug)]
pub struct RateLimits {
    next: Limiters,
}

impl RateLimits {
    /// The limiters `config` needs: the live ones whose settings are
    /// unchanged, new ones otherwise. They replace the live set when the
    /// generation commits (limits no longer configured are dropped then).
    pub fn stage(config: &Config, shared: &RateLimitShared, staging: &mut Staging<'_>) -> Self {
        let live = shared.lock().clone();
        let limits = &config.server.rate_limit;
        let next = Limiters {
            global: limits.global.map(|rate| match &live.global {
                Some(kept) if kept.rate() == rate => kept.clone(),
                _ => Arc::new(SharedLimit::new(rate)),
            }),
            per_ip: per_ip(limits, live.per_ip.clone()),
            buckets: config
                .buckets
                .iter()
                .filter_map(|b| Some((b.name.clone(), bucket(b, &live)?)))
                .collect(),
            users: config
                .buckets
                .iter()
                .filter_map(|b| Some((b.name.clone(), user(b, limits, &live)?)))
                .collect(),
        };
        let committed = next.clone();
        staging.on_commit(move |shared| *shared.rate_limit.lock() = committed);
        Self { next }
    }

    /// The limit by client (global, per address, per bucket) of `bucket`;
    /// `None` when none applies to it.
    pub fn client_layer(&self, bucket: &BucketConfig) -> Option<ClientRateLimitLayer> {
        let own = self.next.buckets.get(&bucket.name).cloned();
        if self.next.global.is_none() && self.next.per_ip.is_none() && own.is_none() {
            return None;
        }
        Some(ClientRateLimitLayer::new(
            &bucket.name,
            self.next.global.clone(),
            self.next.per_ip.clone(),
            own,
        ))
    }

    /// The per-user limit of `bucket`, when it has one.
    pub fn user_layer(&self, bucket: &BucketConfig) -> Option<UserRateLimitLayer> {
        let limit = self.next.users.get(&bucket.name)?;
        Some(UserRateLimitLayer::new(&bucket.name, limit.clone()))
    }
}

/// The per-address limit: kept when its rate and size are unchanged.
fn per_ip(
    limits: &RateLimitConfig,
    live: Option<Arc<KeyedLimit<IpAddr>>>,
) -> Option<Arc<KeyedLimit<IpAddr>>> {
    let rate = limits.per_ip?;
    let max = limits.max_tracked_ips;
    Some(match live {
        Some(kept) if kept.is(rate, max) => kept,
        _ => Arc::new(KeyedLimit::new(rate, max)),
    })
}

/// The bucket's own limit: kept when the bucket's rate is unchanged.
fn bucket(bucket: &BucketConfig, live: &Limiters) -> Option<Arc<SharedLimit>> {
    let rate = bucket.rate_limits.bucket?;
    Some(match live.buckets.get(&bucket.name) {
        Some(kept) if kept.rate() == rate => kept.clone(),
        _ => Arc::new(SharedLimit::new(rate)),
    })
}

/// The bucket's per-user limit: kept when its settings are unchanged.
fn user(
    bucket: &BucketConfig,
    limits: &RateLimitConfig,
    live: &Limiters,
) -> Option<Arc<UserLimit>> {
    let settings = bucket.rate_limits.per_user.as_ref()?;
    let max = limits.max_tracked_ips;
    Some(match live.users.get(&bucket.name) {
        Some(kept) if kept.is(settings, max) => kept.clone(),
        _ => Arc::new(UserLimit::new(settings.clone(), max)),
    })
}
