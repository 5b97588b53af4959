//! `buckets[i].s3.circuit_breaker` (the original Yatagarasu's keys and
//! defaults): when a target's breaker opens, how long it stays open, and how
//! it closes again.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Errors, U64, count, seconds};

/// `buckets[i].s3.circuit_breaker:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the circuit breaker settings (a mapping)"
)]
pub(crate) struct RawCircuitBreaker {
    failure_threshold: Option<U64>,
    success_threshold: Option<U64>,
    timeout_seconds: Option<U64>,
    half_open_max_requests: Option<U64>,
}

/// The validated breaker settings of one bucket, used for each of its S3 targets.
///
/// Part of a breaker's identity across reloads: a reload that changes them
/// starts a fresh breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker.
    pub failure_threshold: u32,
    /// Successful probes that close it again.
    pub success_threshold: u32,
    /// How long it stays open before probes are let through.
    pub timeout: Duration,
    /// Probes in flight at once while half-open.
    pub half_open_max_requests: u32,
}

impl BreakerConfig {
    /// Largest threshold or probe count accepted.
    pub const MAX_COUNT: usize = 1_000_000;
}

impl Default for BreakerConfig {
    /// The original Yatagarasu's defaults, for keys left out of a section.
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            success_threshold: 2,
            timeout: Duration::from_secs(60),
            half_open_max_requests: 3,
        }
    }
}

/// Validates `circuit_breaker` at `at` (such as `buckets[0].s3.circuit_breaker`).
pub(crate) fn circuit_breaker(
    raw: RawCircuitBreaker,
    at: &str,
    errs: &mut Errors,
) -> BreakerConfig {
    let defaults = BreakerConfig::default();
    let mut number = |raw, default: u32, key: &str| {
        let n = count(
            raw,
            default as usize,
            1,
            BreakerConfig::MAX_COUNT,
            &format!("{at}.{key}"),
            errs,
        );
        u32::try_from(n).unwrap_or(default)
    };
    let failure_threshold = number(
        raw.failure_threshold,
        defaults.failure_threshold,
        "failure_threshold",
    );
    let success_threshold = number(
        raw.success_threshold,
        defaults.success_threshold,
        "success_threshold",
    );
    let half_open_max_requests = number(
        raw.half_open_max_requests,
        defaults.half_open_max_requests,
        "half_open_max_requests",
    );
    BreakerConfig {
        failure_threshold,
        success_threshold,
        half_open_max_requests,
        timeout: seconds(
            raw.timeout_seconds,
            defaults.timeout.as_secs(),
            true,
            &format!("{at}.timeout_seconds"),
            errs,
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::test_support::{assert_error, load, with_s3};

    use super::BreakerConfig;

    fn with_breaker(section: &str) -> String {
        with_s3(&format!(
            "      anonymous: true\n      circuit_breaker: {section}\n"
        ))
    }

    #[test]
    fn defaults_are_the_original_ones_and_absent_means_none() {
        let none = load(&with_s3("      anonymous: true\n"), &[]).unwrap();
        assert_eq!(none.buckets[0].circuit_breaker, None);
        let c = load(&with_breaker("{}"), &[]).unwrap();
        assert_eq!(c.buckets[0].circuit_breaker, Some(BreakerConfig::default()));
        let c = load(
            &with_breaker(
                "{failure_threshold: 3, success_threshold: 1, timeout_seconds: 1, \
                 half_open_max_requests: 5}",
            ),
            &[],
        )
        .unwrap();
        let b = c.buckets[0].circuit_breaker.unwrap();
        assert_eq!((b.failure_threshold, b.success_threshold), (3, 1));
        assert_eq!(b.timeout, Duration::from_secs(1));
        assert_eq!(b.half_open_max_requests, 5);
    }

    #[test]
    fn out_of_range_values_name_their_path() {
        for key in [
            "failure_threshold",
            "success_threshold",
            "timeout_seconds",
            "half_open_max_requests",
        ] {
            assert_error(
                &with_breaker(&format!("{{{key}: 0}}")),
                &format!("buckets[0].s3.circuit_breaker.{key}"),
                "must be",
            );
        }
        assert_error(
            &with_breaker("{failure_threshold: 1000001}"),
            "buckets[0].s3.circuit_breaker.failure_threshold",
            "between 1 and 1000000",
        );
        assert_error(
            &with_breaker("{failure_treshold: 1}"),
            "buckets[0].s3.circuit_breaker.failure_treshold",
            "unknown field",
        );
    }
}
