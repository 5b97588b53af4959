//! Headers as the log lines show them: `name: value`, with the value of a
//! redacted header replaced.

use http::HeaderMap;

use super::RequestLogConfig;

/// What a redacted header's value is logged as.
const REDACTED: &str = "[REDACTED]";

/// `headers` as `name: value` strings, in order, values of headers `config`
/// redacts replaced; bytes that are not UTF-8 are shown as U+FFFD.
pub(super) fn render(headers: &HeaderMap, config: &RequestLogConfig) -> Vec<String> {
    headers
        .iter()
        .map(|(name, value)| {
            if config.redacts(name) || value.is_sensitive() {
                format!("{name}: {REDACTED}")
            } else {
                format!("{name}: {}", String::from_utf8_lossy(value.as_bytes()))
            }
        })
        .collect()
}
