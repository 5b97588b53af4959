//! `upstream:`: the pooled client's settings, shared by every bucket.

use super::RawUpstream;
use super::model::UpstreamConfig;
use crate::config::{Errors, count, seconds};

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
    })
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
}
