//! `server.security_limits` (the original Yatagarasu's keys): the largest
//! request line, header block and body the proxy takes.

use serde::Deserialize;

use crate::config::{Errors, U64, count};

/// `server.security_limits:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the security limits (a mapping)"
)]
pub(crate) struct RawSecurityLimits {
    max_uri_length: Option<U64>,
    max_header_size: Option<U64>,
    max_body_size: Option<U64>,
    max_headers: Option<U64>,
}

/// The validated limits, checked on every request before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityLimitsConfig {
    /// Longest path and query, in bytes (414 beyond).
    pub max_uri_length: usize,
    /// Most bytes of header fields, counted as sent on HTTP/1.1 (name,
    /// `: `, value, CRLF) (431 beyond).
    pub max_header_size: usize,
    /// Largest request body: GET and HEAD carry none, so the default is 0
    /// and any announced body is a 413.
    pub max_body_size: u64,
    /// Most header fields (431 beyond).
    pub max_headers: usize,
}

impl SecurityLimitsConfig {
    /// Largest `max_headers`: the listener accepts twice this many fields
    /// before its own parser refuses a request.
    pub const MAX_HEADERS: usize = 1000;
}

impl Default for SecurityLimitsConfig {
    fn default() -> Self {
        Self {
            max_uri_length: 8192,
            max_header_size: 16_384,
            max_body_size: 0,
            max_headers: 100,
        }
    }
}

/// Validates `server.security_limits`.
pub(crate) fn security_limits(raw: RawSecurityLimits, errs: &mut Errors) -> SecurityLimitsConfig {
    let defaults = SecurityLimitsConfig::default();
    let at = |key: &str| format!("server.security_limits.{key}");
    SecurityLimitsConfig {
        max_uri_length: count(
            raw.max_uri_length,
            defaults.max_uri_length,
            64,
            1_048_576,
            &at("max_uri_length"),
            errs,
        ),
        max_header_size: count(
            raw.max_header_size,
            defaults.max_header_size,
            1024,
            1_048_576,
            &at("max_header_size"),
            errs,
        ),
        max_body_size: count(
            raw.max_body_size,
            0,
            0,
            usize::MAX,
            &at("max_body_size"),
            errs,
        ) as u64,
        max_headers: count(
            raw.max_headers,
            defaults.max_headers,
            1,
            SecurityLimitsConfig::MAX_HEADERS,
            &at("max_headers"),
            errs,
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn load(limits: &str) -> Result<Config, crate::ConfigErrors> {
        Config::from_yaml_str_with_env(
            &format!(
                "server:\n  security_limits: {limits}\nbuckets:\n  - {{name: b, path_prefix: /b, \
                 s3: {{bucket: bb-b, region: us-east-1, anonymous: true}}}}\n"
            ),
            &|_| None,
        )
    }

    #[test]
    fn defaults_are_the_original_ones() {
        let limits = load("{}").unwrap().server.security_limits;
        assert_eq!(
            (limits.max_uri_length, limits.max_header_size),
            (8192, 16_384)
        );
        assert_eq!((limits.max_body_size, limits.max_headers), (0, 100));
    }

    #[test]
    fn out_of_range_values_name_their_path() {
        for (yaml, path) in [
            ("{max_headers: 0}", "server.security_limits.max_headers"),
            ("{max_headers: 1001}", "server.security_limits.max_headers"),
            (
                "{max_uri_length: 10}",
                "server.security_limits.max_uri_length",
            ),
            (
                "{max_header_size: 0}",
                "server.security_limits.max_header_size",
            ),
            (
                "{max_body_size: -1}",
                "server.security_limits.max_body_size",
            ),
            ("{nope: 1}", "server.security_limits"),
        ] {
            let errors = load(yaml).unwrap_err();
            assert!(
                errors.0.iter().any(|e| e.path.starts_with(path)),
                "{yaml}: {errors}"
            );
        }
    }
}
