//! Per-bucket cache counters, kept with the store so reloads keep them.
//!
//! Each counter mirrors a Prometheus series; the handles are resolved once per
//! bucket so the request path only increments atomics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::Counter;

use crate::telemetry::metrics::{CACHE_COALESCED_TOTAL, CACHE_REQUESTS_TOTAL, CACHE_SLICES_TOTAL};

/// What the cache did with one request (the `result` label and `X-Cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Served from a fresh (or just revalidated) entry.
    Hit,
    /// Went to S3.
    Miss,
    /// S3 failed and a stale entry within `stale_if_error` was served.
    Stale,
    /// The bucket opted out, or the request cannot be cached (query overrides).
    Bypass,
}

/// One bucket's counters.
#[derive(Debug)]
pub(crate) struct BucketCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    stale: AtomicU64,
    bypass: AtomicU64,
    coalesced: AtomicU64,
    series: [Counter; 4],
    coalesced_series: Counter,
    /// Slices read: `[hit, miss]`.
    slice_series: [Counter; 2],
}

impl BucketCounters {
    /// Counters for `bucket`, registered with the metrics recorder.
    pub(crate) fn new(bucket: &Arc<str>) -> Self {
        let series = |result: &'static str| metrics::counter!(CACHE_REQUESTS_TOTAL, "bucket" => bucket.to_string(), "result" => result);
        Self {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            bypass: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            series: [
                series("hit"),
                series("miss"),
                series("stale"),
                series("bypass"),
            ],
            coalesced_series: metrics::counter!(CACHE_COALESCED_TOTAL),
            slice_series: ["hit", "miss"].map(|result| metrics::counter!(CACHE_SLICES_TOTAL, "bucket" => bucket.to_string(), "result" => result)),
        }
    }

    /// Counts one request's outcome.
    pub(crate) fn record(&self, outcome: Outcome) {
        let (counter, index) = match outcome {
            Outcome::Hit => (&self.hits, 0),
            Outcome::Miss => (&self.misses, 1),
            Outcome::Stale => (&self.stale, 2),
            Outcome::Bypass => (&self.bypass, 3),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.series[index].increment(1);
    }

    /// Counts a request that waited for another's upstream fetch.
    pub(crate) fn record_coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
        self.coalesced_series.increment(1);
    }

    /// Counts one slice read: from a tier (`hit`) or fetched from S3.
    pub(crate) fn record_slice(&self, hit: bool) {
        self.slice_series[usize::from(!hit)].increment(1);
    }

    /// A snapshot for the stats API.
    pub(crate) fn snapshot(&self) -> BucketSnapshot {
        BucketSnapshot {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            bypass: self.bypass.load(Ordering::Relaxed),
            coalesced: self.coalesced.load(Ordering::Relaxed),
        }
    }
}

/// Counter values of one bucket at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BucketSnapshot {
    pub(crate) hits: u64,
    pub(crate) misses: u64,
    pub(crate) stale: u64,
    pub(crate) bypass: u64,
    pub(crate) coalesced: u64,
}

/// `hits / (hits + misses)`, or 0 before any lookup.
pub(crate) fn hit_rate(hits: u64, misses: u64) -> f64 {
    match hits + misses {
        0 => 0.0,
        total => hits as f64 / total as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes() {
        let counters = BucketCounters::new(&Arc::from("b"));
        counters.record(Outcome::Hit);
        counters.record(Outcome::Hit);
        counters.record(Outcome::Miss);
        counters.record(Outcome::Stale);
        counters.record_coalesced();
        let s = counters.snapshot();
        assert_eq!(
            (s.hits, s.misses, s.stale, s.bypass, s.coalesced),
            (2, 1, 1, 0, 1)
        );
        assert!((hit_rate(s.hits, s.misses) - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(hit_rate(0, 0), 0.0);
    }
}
