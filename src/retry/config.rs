//! `buckets[i].s3.retry` (the original Yatagarasu's keys and defaults, plus
//! `budget_percent`): how often a failed read is tried again, how long to
//! wait between tries, and how much extra load retries may add.

use std::time::Duration;

use serde::Deserialize;

use crate::config::{Errors, U64, count, millis};

/// `buckets[i].s3.retry:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the retry settings (a mapping)"
)]
pub(crate) struct RawRetry {
    max_attempts: Option<U64>,
    initial_backoff_ms: Option<U64>,
    max_backoff_ms: Option<U64>,
    budget_percent: Option<U64>,
}

/// The validated retry settings of one bucket, used for each of its S3 targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryConfig {
    /// Tries in all, the first one included (1: never retry).
    pub max_attempts: u32,
    /// The ceiling of the first wait; it doubles with each retry.
    pub initial_backoff: Duration,
    /// The largest ceiling a wait can have.
    pub max_backoff: Duration,
    /// Retries allowed as a percentage of the bucket's recent requests (on
    /// top of a small fixed reserve, see [`crate::retry`]).
    pub budget_percent: u32,
}

impl RetryConfig {
    /// Most tries per request.
    pub const MAX_ATTEMPTS: usize = 10;
    /// Largest `budget_percent`: every request may be retried once.
    pub const MAX_BUDGET_PERCENT: usize = 100;
    /// Longest backoff ceiling: one minute.
    pub const MAX_BACKOFF_MS: u64 = 60_000;
}

impl Default for RetryConfig {
    /// The original Yatagarasu's defaults, and a 10 % budget.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            budget_percent: 10,
        }
    }
}

/// Validates `retry` at `at` (such as `buckets[0].s3.retry`).
pub(crate) fn retry(raw: RawRetry, at: &str, errs: &mut Errors) -> RetryConfig {
    let defaults = RetryConfig::default();
    let path = |key: &str| format!("{at}.{key}");
    let max_attempts = count(
        raw.max_attempts,
        defaults.max_attempts as usize,
        1,
        RetryConfig::MAX_ATTEMPTS,
        &path("max_attempts"),
        errs,
    );
    let backoff = |raw, default: Duration, key: &str, errs: &mut Errors| {
        let d = millis(raw, default.as_millis() as u64, &path(key), errs);
        if d > Duration::from_millis(RetryConfig::MAX_BACKOFF_MS) {
            errs.push(path(key), "must be at most 60000 milliseconds");
            return default;
        }
        d
    };
    let initial_backoff = backoff(
        raw.initial_backoff_ms,
        defaults.initial_backoff,
        "initial_backoff_ms",
        errs,
    );
    let max_backoff = backoff(
        raw.max_backoff_ms,
        defaults.max_backoff,
        "max_backoff_ms",
        errs,
    );
    if initial_backoff > max_backoff {
        errs.push(
            path("initial_backoff_ms"),
            "must not be greater than max_backoff_ms",
        );
    }
    let budget_percent = count(
        raw.budget_percent,
        defaults.budget_percent as usize,
        0,
        RetryConfig::MAX_BUDGET_PERCENT,
        &path("budget_percent"),
        errs,
    );
    RetryConfig {
        max_attempts: u32::try_from(max_attempts).unwrap_or(defaults.max_attempts),
        initial_backoff,
        max_backoff,
        budget_percent: u32::try_from(budget_percent).unwrap_or(defaults.budget_percent),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::test_support::{assert_error, load, with_s3};

    use super::RetryConfig;

    fn with_retry(section: &str) -> String {
        with_s3(&format!("      anonymous: true\n      retry: {section}\n"))
    }

    #[test]
    fn defaults_are_the_original_ones_and_absent_means_none() {
        let none = load(&with_s3("      anonymous: true\n"), &[]).unwrap();
        assert_eq!(none.buckets[0].retry, None);
        let c = load(&with_retry("{}"), &[]).unwrap();
        assert_eq!(c.buckets[0].retry, Some(RetryConfig::default()));
        let c = load(
            &with_retry(
                "{max_attempts: 5, initial_backoff_ms: 200, max_backoff_ms: 10000, \
                 budget_percent: 0}",
            ),
            &[],
        )
        .unwrap();
        let r = c.buckets[0].retry.unwrap();
        assert_eq!(r.max_attempts, 5);
        assert_eq!(r.initial_backoff, Duration::from_millis(200));
        assert_eq!(r.max_backoff, Duration::from_secs(10));
        assert_eq!(r.budget_percent, 0);
    }

    #[test]
    fn out_of_range_values_name_their_path() {
        let at = |key: &str| format!("buckets[0].s3.retry.{key}");
        for (section, key, needle) in [
            ("{max_attempts: 0}", "max_attempts", "between 1 and 10"),
            ("{max_attempts: 11}", "max_attempts", "between 1 and 10"),
            ("{initial_backoff_ms: 0}", "initial_backoff_ms", "must be"),
            ("{max_backoff_ms: 60001}", "max_backoff_ms", "at most 60000"),
            (
                "{initial_backoff_ms: 2000, max_backoff_ms: 1000}",
                "initial_backoff_ms",
                "max_backoff_ms",
            ),
            ("{budget_percent: 101}", "budget_percent", "at most 100"),
            ("{budget_percent: -1}", "budget_percent", "non-negative"),
        ] {
            assert_error(&with_retry(section), &at(key), needle);
        }
        assert_error(
            &with_retry("{attempts: 1}"),
            "buckets[0].s3.retry.attempts",
            "unknown field",
        );
    }
}
