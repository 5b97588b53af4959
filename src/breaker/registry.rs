use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use super::{Breaker, BreakerConfig};
use crate::build::Staging;
use crate::config::{S3Config, Secret};

/// What a breaker's state is about: one target of one bucket, reached at one
/// endpoint with one identity, judged by one set of thresholds. A reload
/// that keeps all of it keeps the breaker (an open one stays open); any
/// change starts a closed one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BreakerKey {
    bucket: String,
    target: String,
    s3_bucket: String,
    region: String,
    endpoint: Option<String>,
    force_path_style: bool,
    credentials: Option<(Secret, Secret, Option<Secret>)>,
    settings: BreakerConfig,
}

impl BreakerKey {
    fn new(bucket: &str, target: &str, s3: &S3Config, settings: BreakerConfig) -> Self {
        Self {
            bucket: bucket.to_owned(),
            target: target.to_owned(),
            s3_bucket: s3.bucket.clone(),
            region: s3.region.clone(),
            endpoint: s3.endpoint.as_ref().map(ToString::to_string),
            force_path_style: s3.force_path_style,
            credentials: s3.credentials.as_ref().map(|c| {
                (
                    c.access_key.clone(),
                    c.secret_key.clone(),
                    c.session_token.clone(),
                )
            }),
            settings,
        }
    }
}

/// The breakers of the generations alive, so a reload finds the state of
/// an unchanged target (kept in [`crate::shared::Shared`]).
///
/// Holds them weakly: a breaker lives as long as a generation uses it.
#[derive(Debug, Default)]
pub struct BreakerRegistry {
    live: Mutex<HashMap<BreakerKey, Weak<Breaker>>>,
}

impl BreakerRegistry {
    /// The breaker for `target` of `bucket` in the build under way: the live
    /// one if nothing it is about changed, else a new closed one that joins
    /// the registry (and publishes its state) only when the build commits.
    pub fn stage(
        &self,
        staging: &mut Staging<'_>,
        bucket: &str,
        target: &str,
        s3: &S3Config,
        settings: BreakerConfig,
    ) -> Arc<Breaker> {
        let key = BreakerKey::new(bucket, target, s3, settings);
        if let Some(live) = self.lock().get(&key).and_then(Weak::upgrade) {
            return live;
        }
        let breaker = Arc::new(Breaker::new(settings, bucket, target));
        let adopted = breaker.clone();
        staging.on_commit(move |shared| {
            let mut live = shared.breakers.lock();
            live.retain(|_, b| b.strong_count() > 0);
            live.insert(key, Arc::downgrade(&adopted));
            adopted.publish();
        });
        breaker
    }

    /// How many breakers are alive (for tests and diagnostics).
    pub fn len(&self) -> usize {
        let live = self.lock();
        live.values().filter(|b| b.strong_count() > 0).count()
    }

    /// Whether no breaker is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BreakerKey, Weak<Breaker>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}
