//! `upstream:`: the pooled client's settings, shared by every bucket.

use std::time::Duration;

use super::RawUpstream;
use super::model::UpstreamConfig;
use crate::config::{Errors, U64, count, seconds};

/// Validates the `upstream:` section.
pub(crate) fn upstream(raw: RawUpstream, errs: &mut Errors) -> Option<UpstreamConfig> {
    let before = errs.count();
    let defaults = UpstreamConfig::default();
    let pool_max_idle_per_host = count(
        raw.pool_max_idle_per_host,
        defaults.pool_max_idle_per_host,
        0,
        usize::MAX,
        "upstream.pool_max_idle_per_host",
        errs,
    );
    let pool_idle_timeout = seconds(
        raw.pool_idle_timeout_seconds,
        defaults.pool_idle_timeout.as_secs(),
        false,
        "upstream.pool_idle_timeout_seconds",
        errs,
    );
    let connect_timeout = seconds(
        raw.connect_timeout_seconds,
        defaults.connect_timeout.as_secs(),
        true,
        "upstream.connect_timeout_seconds",
        errs,
    );
    let (max_connections_per_bucket, connection_wait) = connection_cap(
        raw.max_connections_per_bucket,
        raw.connection_wait_ms,
        &defaults,
        errs,
    );
    let read_buffer_bytes = count(
        raw.read_buffer_bytes,
        defaults.read_buffer_bytes,
        UpstreamConfig::MIN_READ_BUFFER_BYTES,
        UpstreamConfig::MAX_READ_BUFFER_BYTES,
        "upstream.read_buffer_bytes",
        errs,
    );
    (errs.count() == before).then_some(UpstreamConfig {
        pool_max_idle_per_host,
        pool_idle_timeout,
        connect_timeout,
        read_buffer_bytes,
        max_connections_per_bucket,
        connection_wait,
    })
}

/// `max_connections_per_bucket` (0 = no cap) and `connection_wait_ms`
/// (0 = answer at once when every connection is busy).
fn connection_cap(
    max: Option<U64>,
    wait_ms: Option<U64>,
    defaults: &UpstreamConfig,
    errs: &mut Errors,
) -> (usize, Duration) {
    let max = count(
        max,
        defaults.max_connections_per_bucket,
        0,
        usize::MAX,
        "upstream.max_connections_per_bucket",
        errs,
    );
    let default_wait = usize::try_from(defaults.connection_wait.as_millis()).unwrap_or(0);
    let wait_ms = count(
        wait_ms,
        default_wait,
        0,
        // Capped at 2^31 - 1 ms (about 24 days) by `count`.
        usize::MAX,
        "upstream.connection_wait_ms",
        errs,
    );
    (
        max,
        Duration::from_millis(u64::try_from(wait_ms).unwrap_or(u64::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::test_support::{assert_error, load, with_section};

    #[test]
    fn upstream_section() {
        let c = load(
            &with_section(
                "upstream:\n  pool_max_idle_per_host: 0\n  pool_idle_timeout_seconds: 0\n  \
                 connect_timeout_seconds: 2\n  read_buffer_bytes: 65536",
            ),
            &[],
        )
        .unwrap();
        assert_eq!(c.upstream.pool_max_idle_per_host, 0);
        assert_eq!(c.upstream.pool_idle_timeout, Duration::ZERO);
        assert_eq!(c.upstream.connect_timeout.as_secs(), 2);
        assert_eq!(c.upstream.read_buffer_bytes, 65536);
        assert_error(
            &with_section("upstream:\n  connect_timeout_seconds: 0"),
            "upstream.connect_timeout_seconds",
            "must be greater than 0",
        );
        for bad in ["8192", "4194305"] {
            assert_error(
                &with_section(&format!("upstream:\n  read_buffer_bytes: {bad}")),
                "upstream.read_buffer_bytes",
                "must be between 16384 and 4194304",
            );
        }
        let c = load(&with_section(""), &[]).unwrap();
        assert_eq!(c.upstream.read_buffer_bytes, 96 * 1024);
    }

    #[test]
    fn connection_cap() {
        let c = load(&with_section(""), &[]).unwrap();
        assert_eq!(
            c.upstream.max_connections_per_bucket, 0,
            "no cap by default"
        );
        assert_eq!(c.upstream.connection_wait, Duration::from_millis(200));
        let c = load(
            &with_section("upstream:\n  max_connections_per_bucket: 8\n  connection_wait_ms: 0"),
            &[],
        )
        .unwrap();
        assert_eq!(c.upstream.max_connections_per_bucket, 8);
        assert_eq!(c.upstream.connection_wait, Duration::ZERO);
        assert_error(
            &with_section("upstream:\n  max_connections_per_bucket: 2147483648"),
            "upstream.max_connections_per_bucket",
            "must be at most 2147483647",
        );
        assert_error(
            &with_section("upstream:\n  connection_wait_ms: 2147483648"),
            "upstream.connection_wait_ms",
            "must be at most 2147483647",
        );
        assert_error(
            &with_section("upstream:\n  connection_wait_ms: -1"),
            "upstream.connection_wait_ms",
            "",
        );
    }
}
