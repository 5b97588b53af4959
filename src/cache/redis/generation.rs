//! Purge generations: how a whole bucket (or the whole cache) is purged on
//! a Redis Cluster without a `SCAN` over every node.
//!
//! Each bucket has a small counter key, and so has the whole cache; both
//! numbers are part of every entry's key. A bucket purge is one `INCR`:
//! entries written under the old number are never asked for again and
//! expire with their TTL. Lookups need the current numbers, so they are
//! remembered here for at most [`Generations::MAX_AGE`]: a purge made by
//! this instance updates them at once, one made elsewhere reaches this
//! instance through the purge broadcast (which purges here too, bumping
//! and so re-reading the number), and the age limit bounds how long a lost
//! broadcast can keep an instance on an old number.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The generation numbers this instance knows, by counter key.
#[derive(Debug, Default)]
pub(crate) struct Generations {
    known: Mutex<HashMap<String, (u64, Instant)>>,
}

impl Generations {
    /// How long a number read from Redis is used without reading it again.
    pub(crate) const MAX_AGE: Duration = Duration::from_secs(1);

    /// The number under `key` if read less than [`Self::MAX_AGE`] ago.
    pub(crate) fn get(&self, key: &str) -> Option<u64> {
        let known = self.lock();
        let (value, read_at) = known.get(key)?;
        (read_at.elapsed() < Self::MAX_AGE).then_some(*value)
    }

    /// Remembers `value` as the number under `key`, read just now. Numbers
    /// only go up: a reply older than this instance's own purge (read before
    /// its `INCR`) does not replace the newer number while that is fresh.
    pub(crate) fn set(&self, key: &str, value: u64) {
        let mut known = self.lock();
        match known.get_mut(key) {
            Some(slot) if slot.1.elapsed() < Self::MAX_AGE => {
                *slot = (slot.0.max(value), Instant::now());
            }
            Some(slot) => *slot = (value, Instant::now()),
            None => {
                known.insert(key.to_owned(), (value, Instant::now()));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_late_reply_does_not_undo_a_newer_number() {
        let generations = super::Generations::default();
        generations.set("gen:{b}", 5);
        // A purge here stored 6; a GET sent before it answers 5 afterwards.
        generations.set("gen:{b}", 6);
        generations.set("gen:{b}", 5);
        assert_eq!(generations.get("gen:{b}"), Some(6));
    }

    use super::*;

    #[test]
    fn a_number_is_remembered_until_it_is_replaced() {
        let generations = Generations::default();
        assert_eq!(generations.get("g"), None);
        generations.set("g", 3);
        assert_eq!(generations.get("g"), Some(3));
        generations.set("g", 4);
        assert_eq!(generations.get("g"), Some(4));
        assert_eq!(generations.get("other"), None);
    }
}
