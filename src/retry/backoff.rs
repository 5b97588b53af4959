//! Exponential backoff with full jitter.
//!
//! tower's `ExponentialBackoff` adds jitter *on top of* the exponential base
//! (waits lie in `[base, 2·base]`), so clients that failed together retry
//! nearly together. Full jitter (a wait drawn uniformly from zero to the
//! ceiling) spreads them over the whole interval, which is what sheds the
//! load from a struggling target.

use std::time::Duration;

use tower::util::rng::{HasherRng, Rng};

/// The ceiling of the wait before retry number `retry` (1 for the first):
/// `initial · 2^(retry-1)`, at most `max`.
pub fn ceiling(retry: u32, initial: Duration, max: Duration) -> Duration {
    let doublings = retry.saturating_sub(1).min(31);
    initial
        .checked_mul(1 << doublings)
        .map_or(max, |d| d.min(max))
}

/// The wait before retry number `retry`: uniform in `[0, ceiling]`.
///
/// The random draw comes from std's per-process random hasher keys (tower's
/// `HasherRng`): no shared generator, so no lock and no contention.
pub fn full_jitter(retry: u32, initial: Duration, max: Duration) -> Duration {
    let ceiling = ceiling(retry, initial, max);
    ceiling.mul_f64(HasherRng::new().next_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_up_to_the_maximum() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let ceilings: Vec<u128> = (1..=6)
            .map(|n| ceiling(n, initial, max).as_millis())
            .collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(ceiling(u32::MAX, initial, max), max);
        assert_eq!(
            ceiling(40, Duration::from_secs(60), Duration::from_secs(60)).as_secs(),
            60
        );
    }

    #[test]
    fn waits_are_spread_below_the_ceiling() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        let waits: Vec<Duration> = (0..200).map(|_| full_jitter(3, initial, max)).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(400)));
        assert!(waits.iter().any(|w| *w < Duration::from_millis(200)));
        assert!(waits.iter().any(|w| *w > Duration::from_millis(200)));
    }
}
