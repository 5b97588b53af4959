//! Lenient numbers turned into checked durations and counts.
//!
//! Every `*_seconds`, `*_ms` and count option goes through here, so each is
//! bounded by [`MAX_SECONDS`] or [`MAX_COUNT`] (or a tighter range of its
//! own) and an out-of-range value is reported at its path without echoing it.

use std::time::Duration;

use super::ranges::{MAX_COUNT, MAX_SECONDS};
use super::{Errors, U64};

/// A duration in whole seconds: `default` when absent, otherwise at least 1
/// when `positive` (else 0) and at most [`MAX_SECONDS`].
///
/// Every `*_seconds` key goes through here (or [`seconds_within`]), so none
/// can hold a duration that overflows a timer or a clock addition.
pub(crate) fn seconds(
    raw: Option<U64>,
    default: u64,
    positive: bool,
    path: &str,
    errs: &mut Errors,
) -> Duration {
    seconds_within(raw, default, u64::from(positive), MAX_SECONDS, path, errs)
}

/// A duration in whole seconds within `[min, max]` (`max` at most
/// [`MAX_SECONDS`]); `default` when absent.
pub(crate) fn seconds_within(
    raw: Option<U64>,
    default: u64,
    min: u64,
    max: u64,
    path: &str,
    errs: &mut Errors,
) -> Duration {
    let secs = within(
        raw,
        default,
        min,
        max.min(MAX_SECONDS),
        " seconds",
        path,
        errs,
    );
    Duration::from_secs(secs)
}

/// A positive duration in milliseconds, at most [`MAX_SECONDS`] seconds;
/// `default` when absent.
pub(crate) fn millis(raw: Option<U64>, default: u64, path: &str, errs: &mut Errors) -> Duration {
    let ms = within(
        raw,
        default,
        1,
        MAX_SECONDS * 1000,
        " milliseconds",
        path,
        errs,
    );
    Duration::from_millis(ms)
}

/// A count within `[min, max]` (`max` at most [`MAX_COUNT`]); `default` when absent.
pub(crate) fn count(
    raw: Option<U64>,
    default: usize,
    min: usize,
    max: usize,
    path: &str,
    errs: &mut Errors,
) -> usize {
    let widen = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let max = widen(max).min(MAX_COUNT);
    let n = within(raw, widen(default), widen(min), max, "", path, errs);
    usize::try_from(n).unwrap_or(default)
}

/// The value of `raw` (or `default`) when it lies in `[min, max]`; otherwise
/// records an error naming the range (never the value: it may come from the
/// environment) and returns `default`.
fn within(
    raw: Option<U64>,
    default: u64,
    min: u64,
    max: u64,
    unit: &str,
    path: &str,
    errs: &mut Errors,
) -> u64 {
    let Some(U64(n)) = raw else {
        return default;
    };
    if (min..=max).contains(&n) {
        return n;
    }
    errs.push(path, out_of_range(n < min, min, max, unit));
    default
}

/// "must be …" for a value outside `[min, max]` (`below`: under `min`).
///
/// Under a shared ceiling (a duration or a count with no bound of its own),
/// 0 for 1 is "must be greater than 0"; otherwise the message names the range.
fn out_of_range(below: bool, min: u64, max: u64, unit: &str) -> String {
    match min {
        1 if below && max >= MAX_COUNT => "must be greater than 0".to_owned(),
        0 => format!("must be at most {max}{unit}"),
        min => format!("must be between {min} and {max}{unit}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::test_support::{load, one_error, with_section};

    #[test]
    fn durations_and_counts_have_an_upper_bound() {
        let c = load(
            &with_section(
                "server:\n  header_read_timeout_seconds: 2147483648\n  \
                 max_connections: 2147483647\nupstream:\n  pool_idle_timeout_seconds: 2147483648",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.server.header_read_timeout.as_secs(), 1 << 31);
        assert_eq!(c.server.max_connections, (1 << 31) - 1);
        assert_eq!(c.upstream.pool_idle_timeout.as_secs(), 1 << 31);
        for (section, key, message) in [
            (
                "server",
                "header_read_timeout_seconds",
                "must be between 1 and 2147483648 seconds",
            ),
            (
                "server",
                "graceful_shutdown_timeout_seconds",
                "must be at most 2147483648 seconds",
            ),
            (
                "server",
                "max_connections",
                "must be between 1 and 2147483647",
            ),
            (
                "upstream",
                "pool_idle_timeout_seconds",
                "must be at most 2147483648 seconds",
            ),
            (
                "upstream",
                "pool_max_idle_per_host",
                "must be at most 2147483647",
            ),
        ] {
            for bad in ["2147483649", "18446744073709551615"] {
                let e = one_error(&with_section(&format!("{section}:\n  {key}: {bad}")), &[]);
                assert_eq!(e.path, format!("{section}.{key}"), "{e}");
                assert_eq!(e.message, message, "{e}");
            }
        }
        let e = one_error(&with_section("server:\n  max_connections: 2147483648"), &[]);
        assert_eq!(
            e.to_string(),
            "server.max_connections: must be between 1 and 2147483647"
        );
    }
}
