//! A bounded keyed state store for governor: at most a fixed number of keys,
//! the least useful ones evicted first (see the module docs of
//! [`crate::rate_limit`] for why `quick_cache`).

use std::hash::Hash;

use governor::nanos::Nanos;
use governor::state::StateStore;
use quick_cache::sync::{Cache, DefaultLifecycle, EntryAction, EntryResult};
use quick_cache::{DefaultHashBuilder, OptionsBuilder, UnitWeighter};

/// Fewest keys per shard: smaller shards evict too eagerly to be useful.
const MIN_KEYS_PER_SHARD: usize = 32;

/// Each key's GCRA state (its theoretical arrival time, in nanoseconds since
/// the limiter started) in a `quick_cache` holding at most `max_keys` keys.
pub struct BoundedStore<K> {
    entries: Cache<K, u64, UnitWeighter, DefaultHashBuilder, DefaultLifecycle<K, u64>>,
}

impl<K: Eq + Hash + Clone> std::fmt::Debug for BoundedStore<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundedStore")
            .field("keys", &self.entries.len())
            .field("capacity", &self.entries.capacity())
            .finish()
    }
}

impl<K: Eq + Hash + Clone> BoundedStore<K> {
    /// A store that never holds more than `max_keys` keys (at least one).
    pub fn new(max_keys: usize) -> Self {
        let max_keys = max_keys.max(1);
        // quick_cache rounds each shard's share up; a capacity that is a
        // multiple of the shard count makes `max_keys` a hard bound.
        let parallel = std::thread::available_parallelism().map_or(1, |n| n.get());
        let wanted = (parallel * 4).min(max_keys / MIN_KEYS_PER_SHARD).max(1);
        // The largest power of two not above `wanted` (quick_cache's shard counts).
        let shards = 1usize << wanted.ilog2();
        let capacity = max_keys - max_keys % shards;
        let options = OptionsBuilder::new()
            .shards(shards)
            .estimated_items_capacity(capacity)
            .weight_capacity(capacity as u64)
            .build();
        let entries = match options {
            Ok(options) => Cache::with_options(
                options,
                UnitWeighter,
                DefaultHashBuilder::default(),
                DefaultLifecycle::default(),
            ),
            // Unreachable (both capacities are set); a plain cache is as bounded.
            Err(_) => Cache::with(
                capacity,
                capacity as u64,
                UnitWeighter,
                DefaultHashBuilder::default(),
                DefaultLifecycle::default(),
            ),
        };
        Self { entries }
    }

    /// How many keys have state now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key has state.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The most keys the store holds.
    pub fn capacity(&self) -> u64 {
        self.entries.capacity()
    }
}

impl<K: Eq + Hash + Clone> StateStore for BoundedStore<K> {
    type Key = K;

    /// Runs governor's decision on the key's state under the shard's lock,
    /// so concurrent requests of one key are decided one after the other.
    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let occupied = |_: &K, tat: &mut u64| match f(Some(Nanos::new(*tat))) {
            Ok((outcome, next)) => {
                *tat = next.as_u64();
                EntryAction::Retain(Ok(outcome))
            }
            // A refused key is kept (and counts as used): forgetting it
            // would hand its client a fresh burst.
            Err(refusal) => EntryAction::Retain(Err(refusal)),
        };
        match self.entries.entry(key, None, occupied) {
            EntryResult::Retained(decision) => decision,
            EntryResult::Vacant(slot) => {
                let (outcome, next) = f(None)?;
                let _ = slot.insert(next.as_u64());
                Ok(outcome)
            }
            // Not produced by a callback that only retains, nor with no timeout.
            EntryResult::Removed(..) | EntryResult::Replaced(..) | EntryResult::Timeout => {
                f(None).map(|(outcome, _)| outcome)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::num::NonZeroU32;

    use governor::clock::DefaultClock;
    use governor::{Quota, RateLimiter};

    use super::*;

    type Limiter = RateLimiter<IpAddr, BoundedStore<IpAddr>, DefaultClock>;

    fn addr(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    #[test]
    fn ten_thousand_addresses_stay_within_the_bound() {
        for max in [1, 7, 100, 1000, 4096] {
            let store = BoundedStore::new(max);
            let quota = Quota::per_second(NonZeroU32::MIN);
            let limiter: Limiter = RateLimiter::new(quota, store, DefaultClock::default());
            for i in 0..10_000 {
                assert!(
                    limiter.check_key(&addr(i)).is_ok(),
                    "a new key has a full burst"
                );
            }
            let store = limiter.into_state_store();
            assert!(
                store.len() <= max,
                "{} keys kept with max {max}",
                store.len()
            );
            assert!(store.capacity() <= max as u64);
            assert!(!store.is_empty());
        }
    }

    #[test]
    fn a_busy_key_survives_a_flood_of_new_ones() {
        let quota = Quota::per_hour(NonZeroU32::MIN);
        let limiter: Limiter =
            RateLimiter::new(quota, BoundedStore::new(1000), DefaultClock::default());
        let busy = addr(1_000_000);
        assert!(limiter.check_key(&busy).is_ok());
        for i in 0..10_000 {
            let _ = limiter.check_key(&addr(i));
            // The abuser keeps trying, and keeps being refused.
            assert!(limiter.check_key(&busy).is_err(), "after {i} new addresses");
        }
    }
}
