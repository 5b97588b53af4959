//! `logging:`: as written, validated, and the validated settings the
//! subscriber is built from ([`super::logging::init`]).

use serde::Deserialize;

use crate::config::{Errors, Str};

/// The levels accepted on their own (any case); anything else must be a filter directive.
const LOG_LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

/// `logging:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(
    default,
    deny_unknown_fields,
    expecting = "the logging section (a mapping)"
)]
pub(crate) struct RawLogging {
    level: Option<Str>,
    format: Option<Str>,
}

/// Log output settings.
#[derive(Debug, Clone)]
pub struct LoggingConfig {
    /// A `tracing` filter: a level (`trace`..`error`) or directives such as `info,hyper=warn`.
    pub level: String,
    /// Output format.
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Validates the `logging:` section.
pub(crate) fn logging(raw: RawLogging, errs: &mut Errors) -> Option<LoggingConfig> {
    let before = errs.count();
    let level = raw
        .level
        .map_or_else(|| "info".to_owned(), |Str(s)| s.trim().to_owned());
    if level.is_empty() {
        errs.push("logging.level", "must not be empty");
    } else if !level.contains([',', '=']) {
        if !LOG_LEVELS.iter().any(|l| l.eq_ignore_ascii_case(&level)) {
            errs.push(
                "logging.level",
                "must be trace, debug, info, warn or error, or a filter directive such as \
                 info,hyper=warn",
            );
        }
    } else if tracing_subscriber::EnvFilter::builder()
        .parse(&level)
        .is_err()
    {
        errs.push(
            "logging.level",
            "not a valid filter directive (expected e.g. info,hyper=warn)",
        );
    }
    let format = match raw.format {
        None => Some(LogFormat::Json),
        Some(Str(f)) if f.trim().eq_ignore_ascii_case("json") => Some(LogFormat::Json),
        Some(Str(f)) if f.trim().eq_ignore_ascii_case("text") => Some(LogFormat::Text),
        Some(_) => {
            errs.push("logging.format", "must be json or text");
            None
        }
    };
    match format {
        Some(format) if errs.count() == before => Some(LoggingConfig { level, format }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::{assert_error, load, with_section};

    #[test]
    fn logging_section() {
        for level in [
            "trace",
            "debug",
            "info",
            "warn",
            "error",
            "WARN",
            "info,hyper=warn",
        ] {
            let c = load(
                &with_section(&format!("logging:\n  level: \"{level}\"")),
                &[],
            )
            .unwrap();
            assert_eq!(c.logging.level, level);
        }
        assert_error(
            &with_section("logging:\n  level: \"\""),
            "logging.level",
            "must not be empty",
        );
        assert_error(
            &with_section("logging:\n  level: verbose"),
            "logging.level",
            "must be trace, debug, info, warn or error",
        );
        assert_error(
            &with_section("logging:\n  level: \"info,=[\""),
            "logging.level",
            "not a valid filter directive",
        );
        let c = load(&with_section("logging:\n  format: text"), &[]).unwrap();
        assert_eq!(c.logging.format, LogFormat::Text);
        assert_error(
            &with_section("logging:\n  format: xml"),
            "logging.format",
            "must be json or text",
        );
    }
}
