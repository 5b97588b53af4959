//! Recent decisions of one policy engine, so repeated identical requests do
//! not ask it again.
//!
//! Keyed by an exact encoding of what the engine would see (the input
//! document's [`cache_key`](super::InputDocument::cache_key), or the OpenFGA
//! check request), so two requests share a decision only when the engine
//! could not tell them apart. A cache belongs to one
//! engine configuration, and for Rego to one policy text: that is the policy
//! generation, so a changed policy never answers from an older one's
//! decisions. "Allow" and "deny" have their own lifetimes; errors are never
//! cached. Bounded in entries by `quick_cache` (CLOCK-Pro eviction).

use std::time::Duration;

use quick_cache::sync::Cache;
use tokio::time::Instant;

use super::input::MAX_KEY_BYTES;
use crate::config::ranges::MAX_DURATION;

#[derive(Debug, Clone, Copy)]
struct CachedDecision {
    allowed: bool,
    expires: Instant,
}

/// Bounded decision cache with separate "allow" and "deny" lifetimes.
#[derive(Debug)]
pub struct DecisionCache {
    entries: Cache<Box<[u8]>, CachedDecision>,
    positive_ttl: Duration,
    negative_ttl: Duration,
}

impl DecisionCache {
    /// An empty cache of at most `max_entries` decisions.
    pub fn new(max_entries: usize, positive_ttl: Duration, negative_ttl: Duration) -> Self {
        Self {
            entries: Cache::new(max_entries.max(1)),
            positive_ttl,
            negative_ttl,
        }
    }

    /// The decision cached under `key`, unless it has expired.
    pub fn get(&self, key: &[u8]) -> Option<bool> {
        let entry = self.entries.get(key)?;
        (entry.expires > Instant::now()).then_some(entry.allowed)
    }

    /// Remembers a decision for its lifetime (a zero lifetime, one that
    /// overflows the clock, or a key over 16 KiB, stores nothing).
    pub fn insert(&self, key: &[u8], allowed: bool) {
        let ttl = if allowed {
            self.positive_ttl
        } else {
            self.negative_ttl
        };
        if ttl.is_zero() || key.len() > MAX_KEY_BYTES {
            return;
        }
        // Capped like every configured duration, and checked: a lifetime
        // past the end of the clock is not cached rather than a panic.
        let Some(expires) = Instant::now().checked_add(ttl.min(MAX_DURATION)) else {
            return;
        };
        self.entries
            .insert(key.into(), CachedDecision { allowed, expires });
    }

    /// How many decisions are held (expired ones included until replaced or evicted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no decision is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn allow_and_deny_expire_separately() {
        let cache = DecisionCache::new(10, Duration::from_secs(60), Duration::from_secs(5));
        cache.insert(b"allow-me", true);
        cache.insert(b"deny-me", false);
        assert_eq!(cache.get(b"allow-me"), Some(true));
        assert_eq!(cache.get(b"deny-me"), Some(false));
        assert_eq!(cache.get(b"other"), None);
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(cache.get(b"deny-me"), None);
        assert_eq!(cache.get(b"allow-me"), Some(true));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(cache.get(b"allow-me"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn zero_negative_ttl_and_huge_queries_are_not_stored() {
        let cache = DecisionCache::new(10, Duration::from_secs(60), Duration::ZERO);
        cache.insert(b"deny-me", false);
        assert!(cache.is_empty());
        let huge = vec![b'x'; MAX_KEY_BYTES + 1];
        cache.insert(&huge, true);
        assert!(cache.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_lifetime_beyond_the_clock_is_capped_not_a_panic() {
        let cache = DecisionCache::new(10, Duration::MAX, Duration::MAX);
        cache.insert(b"allow-me", true);
        cache.insert(b"deny-me", false);
        assert_eq!(cache.get(b"allow-me"), Some(true));
        assert_eq!(cache.get(b"deny-me"), Some(false));
    }

    #[test]
    fn bounded() {
        let cache = DecisionCache::new(50, Duration::from_secs(60), Duration::from_secs(60));
        for i in 0..1000u32 {
            cache.insert(&i.to_be_bytes(), true);
        }
        assert!(cache.len() <= 50, "{}", cache.len());
    }
}
